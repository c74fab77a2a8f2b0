import { useEffect, useState, type FormEvent } from 'react';

import { api, formError, type Me } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { ROLE_NAMES } from '../roles';

/** `/account`: who you are, and a password change (which ends your other sessions). */
export function AccountView(props: { me: Me | null }) {
  const { me } = props;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    document.title = 'Account · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (next !== again) return setError('The new passwords differ.');
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await api.changePassword(current, next);
      setCurrent('');
      setNext('');
      setAgain('');
      setNotice('Password changed. Your other sessions (other browsers and devices) are signed out.');
    } catch (e) {
      setError(formError(e));
    } finally {
      setBusy(false);
    }
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
        <label className="block-field">
          Current password
          <input
            type="password"
            autoComplete="current-password"
            required
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            data-testid="password-current"
          />
        </label>
        <label className="block-field">
          <span>
            New password <span className="muted">(at least 10 characters)</span>
          </span>
          <input
            type="password"
            autoComplete="new-password"
            required
            minLength={10}
            value={next}
            onChange={(e) => setNext(e.target.value)}
            data-testid="password-new"
          />
        </label>
        <label className="block-field">
          New password again
          <input
            type="password"
            autoComplete="new-password"
            required
            minLength={10}
            value={again}
            onChange={(e) => setAgain(e.target.value)}
            data-testid="password-again"
          />
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy} data-testid="password-submit">
            Change password
          </button>
        </div>
      </form>
    </section>
  );
}
