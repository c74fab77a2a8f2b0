import { useEffect, useState, type FormEvent } from 'react';

import { api, type Me } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { MIN_PASSWORD, NewPasswordField, SubmitButton, TextField } from '../components/Field';
import { ROLE_NAMES } from '../roles';
import { useFormAction } from '../useFormAction';

/** `/account`: who you are, and a password change (which ends your other sessions). */
export function AccountView(props: { me: Me | null }) {
  const { me } = props;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const { busy, error, setError, run } = useFormAction();
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    document.title = 'Account · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (next !== again) return setError('The new passwords differ.');
    setNotice(null);
    await run(async () => {
      await api.changePassword(current, next);
      setCurrent('');
      setNext('');
      setAgain('');
      setNotice('Password changed. Your other sessions (other browsers and devices) are signed out.');
    });
  };

  return (
    <section aria-labelledby="account-title" data-testid="account-view">
      <h1 id="account-title">Account</h1>
      {me && (
        <dl className="summary">
          <div>
            <dt>Name</dt>
            <dd data-testid="account-name">{me.name}</dd>
          </div>
          <div>
            <dt>E-mail</dt>
            <dd>{me.email}</dd>
          </div>
          <div>
            <dt>Organisation</dt>
            <dd>
              {me.organisation_name || me.organisation} <span className="muted">({me.organisation})</span>
            </dd>
          </div>
          <div>
            <dt>Role</dt>
            <dd>{ROLE_NAMES[me.role] ?? me.role}</dd>
          </div>
        </dl>
      )}
      <form className="card form" onSubmit={(e) => void submit(e)} aria-labelledby="password-title">
        <h2 id="password-title">Change password</h2>
        <ErrorMessage error={error} onDismiss={() => setError(null)} />
        {notice && (
          <p className="notice" role="status" data-testid="password-changed">
            {notice}
          </p>
        )}
        <input type="text" autoComplete="username" value={me?.email ?? ''} readOnly hidden />
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          required
          value={current}
          onChange={setCurrent}
          testId="password-current"
        />
        <NewPasswordField
          label="New password"
          hint={`at least ${MIN_PASSWORD} characters`}
          value={next}
          onChange={setNext}
          testId="password-new"
        />
        <NewPasswordField label="New password again" value={again} onChange={setAgain} testId="password-again" />
        <SubmitButton busy={busy} testId="password-submit">
          Change password
        </SubmitButton>
      </form>
    </section>
  );
}
