import type { ReactNode } from 'react';

/** A column heading, with a tooltip that explains it where `title` is given. */
export type Column = string | { label: string; title: string };

/** A scrollable `.data-table`: its column headings, then the rows given as children. `actions`
 * adds a last column, headed for screen readers only, for the rows' buttons. */
export function DataTable(props: {
  columns: Column[];
  actions?: boolean;
  testId?: string;
  className?: string;
  busy?: boolean;
  children: ReactNode;
}) {
  const { columns, actions, testId, className, busy, children } = props;
  return (
    <div className="table-scroll">
      <table className={className ? `data-table ${className}` : 'data-table'} data-testid={testId} aria-busy={busy}>
        <thead>
          <tr>
            {columns.map((c) =>
              typeof c === 'string' ? (
                <th key={c} scope="col">
                  {c}
                </th>
              ) : (
                <th key={c.label} scope="col" title={c.title}>
                  {c.label}
                </th>
              ),
            )}
            {actions && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
