import Table from 'cli-table3';

/** A plain table for humans; `--json` output is what scripts should parse. */
export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows) t.push(row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))));
  return t.toString();
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
