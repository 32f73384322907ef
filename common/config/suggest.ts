/** "Did you mean" hints: most config mistakes are one or two characters off a valid name. */

/** Closest candidate within a small edit distance, for "did you mean" hints on typos. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** `; did you mean "x"?` when one candidate is close, else "" (for appending to a message). */
export function withHint(word: string, candidates: Iterable<string>): string {
  const hint = suggest(word, candidates);
  return hint ? `; did you mean "${hint}"?` : '';
}
