import { useEffect, useState, type FormEvent } from 'react';

import { api } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { SubmitButton, TextField } from '../components/Field';
import { Link } from '../router';
import { useFormAction } from '../useFormAction';

/** Sign in with e-mail and password; the organisation is optional (default: the first joined). */
export function SignInView(props: { next: string | null }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [organisation, setOrganisation] = useState('');
  const { busy, error, run } = useFormAction();

  useEffect(() => {
    document.title = 'Sign in · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // The new session re-renders the app, which goes on to `next`.
    await run(() => api.login(email.trim(), password, organisation.trim() || undefined), { stayBusy: true });
  };

  const signUp = props.next ? `/signup?next=${encodeURIComponent(props.next)}` : '/signup';
  return (
    <main id="main" className="page auth-page">
      <form className="card auth-form" onSubmit={(e) => void submit(e)} aria-labelledby="signin-title" data-testid="signin-form">
        <h1 id="signin-title" className="brand">
          <Bulb /> Sign in to Lightbulb
        </h1>
        <ErrorMessage error={error} />
        <TextField
          label="E-mail"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={setEmail}
          testId="signin-email"
        />
        <TextField
          label="Password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={setPassword}
          testId="signin-password"
        />
        <TextField
          label="Organisation id"
          hint="optional: the first you joined otherwise"
          type="text"
          autoComplete="organization"
          value={organisation}
          onChange={setOrganisation}
          testId="signin-organisation"
        />
        <SubmitButton busy={busy} testId="signin-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </SubmitButton>
        <p className="muted">
          New here? <Link to={signUp} testId="link-signup">Create an organisation</Link>. Invited? Open the link you were
          sent.
        </p>
      </form>
    </main>
  );
}
