import { useId, useRef, useState } from 'react';

/** A value shown once (an invitation link, an API key) with a button that copies it. */
export function CopyField(props: { label: string; value: string; testId?: string; note?: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const id = useId();

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied('yes');
    } catch {
      // No clipboard API (an insecure origin) or no permission: select it for Ctrl+C instead.
      input.current?.select();
      setCopied(document.execCommand?.('copy') ? 'yes' : 'no');
    }
  };

  return (
    <div className="copy-field">
      <label htmlFor={id}>{props.label}</label>
      <div className="copy-field__row">
        <input
          id={id}
          ref={input}
          type="text"
          readOnly
          value={props.value}
          onFocus={(e) => e.currentTarget.select()}
          data-testid={props.testId}
          spellCheck={false}
        />
        <button type="button" onClick={() => void copy()} data-testid={props.testId && `${props.testId}-copy`}>
          Copy
        </button>
        <span role="status" className="muted">
          {copied === 'yes' ? 'Copied' : copied === 'no' ? 'Selected: press Ctrl+C' : ''}
        </span>
      </div>
      {props.note && <p className="muted copy-field__note">{props.note}</p>}
    </div>
  );
}
