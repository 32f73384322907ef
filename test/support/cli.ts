import { main } from '../../client/cli/main';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `nstance` CLI entry point in-process, capturing what it prints (so, as off a terminal). */
export async function runCli(...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  // Captured output is no terminal, whether jest's own stdout is one or not: the CLI must print as it would to a pipe.
  const streams = [process.stdout, process.stderr];
  const tty = streams.map((s) => Object.getOwnPropertyDescriptor(s, 'isTTY'));
  for (const s of streams) Object.defineProperty(s, 'isTTY', { value: false, configurable: true, writable: true });
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const code = await main(['node', 'nstance', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    streams.forEach((s, i) => {
      const was = tty[i];
      if (was) Object.defineProperty(s, 'isTTY', was);
      else delete (s as { isTTY?: boolean }).isTTY;
    });
  }
}

