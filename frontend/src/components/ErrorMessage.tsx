/** A readable error from the API or the network, announced to screen readers. */
export function ErrorMessage(props: { error: string | null; onDismiss?: () => void }) {
  if (!props.error) return null;
  return (
    <div className="error" role="alert" data-testid="error">
      <span>{props.error}</span>
      {props.onDismiss && (
        <button type="button" className="link-button" onClick={props.onDismiss} aria-label="Dismiss error">
          Dismiss
        </button>
      )}
    </div>
  );
}
