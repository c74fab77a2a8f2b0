import { ErrorMessage } from './ErrorMessage';

/** A failed load, with a button to try it again. */
export function RetryError(props: { error: string; onRetry: () => void }) {
  return (
    <>
      <ErrorMessage error={props.error} />
      <button type="button" onClick={props.onRetry}>
        Retry
      </button>
    </>
  );
}
