import { useEffect, useState, type FormEvent } from 'react';

import { api, formError } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { Link } from '../router';

/** Sign in with e-mail and password; the organisation is optional (default: the first joined). */
export function SignInView(props: { next: string | null }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [organisation, setOrganisation] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    document.title = 'Sign in · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // The new session re-renders the app, which goes on to `next`.
      await api.login(email.trim(), password, organisation.trim() || undefined);
    } catch (e) {
      setError(formError(e));
      setBusy(false);
    }
  };

  const signUp = props.next ? `/signup?next=${encodeURIComponent(props.next)}` : '/signup';
  return (
    <main id="main" className="page auth-page">
      <form className="card auth-form" onSubmit={(e) => void submit(e)} aria-labelledby="signin-title" data-testid="signin-form">
        <h1 id="signin-title" className="brand">
          <Bulb /> Sign in to Lightbulb
        </h1>
        <ErrorMessage error={error} />
        <label className="block-field">
          E-mail
          <input
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            data-testid="signin-email"
          />
        </label>
        <label className="block-field">
          Password
          <input
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            data-testid="signin-password"
          />
        </label>
        <label className="block-field">
          <span>
            Organisation id <span className="muted">(optional: the first you joined otherwise)</span>
          </span>
          <input
            type="text"
            autoComplete="organization"
            value={organisation}
            onChange={(e) => setOrganisation(e.target.value)}
            data-testid="signin-organisation"
          />
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy} data-testid="signin-submit">
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
        <p className="muted">
          New here? <Link to={signUp} testId="link-signup">Create an organisation</Link>. Invited? Open the link you were
          sent.
        </p>
      </form>
    </main>
  );
}
