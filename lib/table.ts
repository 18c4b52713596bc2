import Table from 'cli-table3';

/** A readable terminal table (CLI default output); `--json` callers print the rows instead. */
export function renderTable(head: string[], rows: (string | number | boolean | null | undefined)[][]): string {
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((c) => (c === null || c === undefined ? '' : String(c))));
  return table.toString();
}
