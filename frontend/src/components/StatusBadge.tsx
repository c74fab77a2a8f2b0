import type { ProjectStatus } from '../api';

export const STATUS_TEXT: Record<ProjectStatus, string> = {
  awaiting_upload: 'Waiting for files',
  importing: 'Importing',
  indexing: 'Indexing',
  embedding: 'Embedding · labelling open',
  ready: 'Ready',
  failed: 'Failed',
};

/** Labelling may start once the dataset is being embedded. */
export const canStartLabelling = (status: ProjectStatus | undefined) =>
  status === undefined || status === 'embedding' || status === 'ready';

/** A project's dataset status as a small coloured label. */
export function StatusBadge(props: { status: ProjectStatus | undefined; testId?: string }) {
  const status = props.status ?? 'ready';
  return (
    <span className={`status status--${status}`} data-testid={props.testId} data-status={status}>
      {STATUS_TEXT[status] ?? status}
    </span>
  );
}
