import { useEffect, useState, type FormEvent } from 'react';

import { api } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { MIN_PASSWORD, NewPasswordField, SubmitButton, TextField } from '../components/Field';
import { Link } from '../router';
import { useFormAction } from '../useFormAction';

/** A new organisation and its owner, signed in on success. */
export function SignUpView(props: { next: string | null }) {
  const [organisation, setOrganisation] = useState('');
  const [organisationName, setOrganisationName] = useState('');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useFormAction();

  useEffect(() => {
    document.title = 'Create an organisation · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // The new session re-renders the app, which goes on to `next`.
    await run(
      () =>
        api.signUp({
          organisation: organisation.trim(),
          organisation_name: organisationName.trim() || undefined,
          name: name.trim(),
          email: email.trim(),
          password,
        }),
      { stayBusy: true },
    );
  };

  const signIn = props.next ? `/signin?next=${encodeURIComponent(props.next)}` : '/signin';
  return (
    <main id="main" className="page auth-page">
      <form className="card auth-form" onSubmit={(e) => void submit(e)} aria-labelledby="signup-title" data-testid="signup-form">
        <h1 id="signup-title" className="brand">
          <Bulb /> Create an organisation
        </h1>
        <p className="muted">You become its owner: you can then create projects and invite people.</p>
        <ErrorMessage error={error} />
        <TextField
          label="Organisation id"
          hint="2–40 lower-case letters, digits or “-”"
          type="text"
          required
          pattern="[a-z0-9\-]{2,40}"
          title="2–40 lower-case letters, digits or -"
          value={organisation}
          onChange={setOrganisation}
          testId="signup-organisation"
        />
        <TextField
          label="Organisation name"
          type="text"
          autoComplete="organization"
          value={organisationName}
          onChange={setOrganisationName}
          testId="signup-organisation-name"
        />
        <TextField
          label="Your name"
          hint="letters, digits, “-”, “_”, “.” or “@”; shown with your labels"
          type="text"
          autoComplete="nickname"
          required
          value={name}
          onChange={setName}
          testId="signup-name"
        />
        <TextField
          label="E-mail"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={setEmail}
          testId="signup-email"
        />
        <NewPasswordField
          label="Password"
          hint={`at least ${MIN_PASSWORD} characters`}
          value={password}
          onChange={setPassword}
          testId="signup-password"
        />
        <SubmitButton busy={busy} testId="signup-submit">
          {busy ? 'Creating…' : 'Create organisation'}
        </SubmitButton>
        <p className="muted">
          Have an account? <Link to={signIn}>Sign in</Link>.
        </p>
      </form>
    </main>
  );
}
