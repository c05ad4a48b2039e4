import readline from 'node:readline';

/** The first line of a stream (a secret piped in with `-`, kept out of the process list); '' when there is none. */
export async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  const lines = readline.createInterface({ input, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of lines) return line;
    return '';
  } finally {
    lines.close();
  }
}
