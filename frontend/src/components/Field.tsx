import type { InputHTMLAttributes, ReactNode, TextareaHTMLAttributes } from 'react';

/** What a labelled field says: its label, and an optional muted hint shown in brackets after it. */
export type FieldLabel = { label: string; hint?: string };

/** A label above its control (`.block-field`). */
export function Field(props: FieldLabel & { children: ReactNode }) {
  return (
    <label className="block-field">
      {props.hint === undefined ? (
        props.label
      ) : (
        <span>
          {props.label} <span className="muted">({props.hint})</span>
        </span>
      )}
      {props.children}
    </label>
  );
}

/** A labelled control: its text, told to `onChange` on each edit, its data-testid, and the
 * element's other attributes. */
type Control<Attributes> = FieldLabel & {
  value: string;
  onChange: (value: string) => void;
  testId: string;
} & Omit<Attributes, 'value' | 'onChange' | 'children'>;

export type TextFieldProps = Control<InputHTMLAttributes<HTMLInputElement>> & { type: string };

/** A labelled `<input>`; the other attributes (type, required, autoComplete…) go to the input. */
export function TextField(props: TextFieldProps) {
  const { label, hint, value, onChange, testId, ...input } = props;
  return (
    <Field label={label} hint={hint}>
      <input {...input} value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} />
    </Field>
  );
}

export type TextAreaFieldProps = Control<TextareaHTMLAttributes<HTMLTextAreaElement>>;

/** A labelled `<textarea>`; the other attributes (rows, disabled…) go to the textarea. */
export function TextAreaField(props: TextAreaFieldProps) {
  const { label, hint, value, onChange, testId, ...textarea } = props;
  return (
    <Field label={label} hint={hint}>
      <textarea {...textarea} value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} />
    </Field>
  );
}

/** The shortest new password the server accepts (`auth::password::MIN_LEN`). */
export const MIN_PASSWORD = 10;

/** A new password: at least {@link MIN_PASSWORD} characters, offered to the password manager. */
export function NewPasswordField(props: Omit<TextFieldProps, 'type'>) {
  return <TextField type="password" autoComplete="new-password" required minLength={MIN_PASSWORD} {...props} />;
}

/** A form's submit button, on its own row: disabled while the form is busy. */
export function SubmitButton(props: { busy: boolean; testId: string; children: ReactNode }) {
  return (
    <div className="actions">
      <button type="submit" className="primary" disabled={props.busy} data-testid={props.testId}>
        {props.children}
      </button>
    </div>
  );
}
