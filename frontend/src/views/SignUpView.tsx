import { useEffect, useState, type FormEvent } from 'react';

import { api, formError } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { Link } from '../router';

const MIN_PASSWORD = 10;

/** A new organisation and its owner, signed in on success. */
export function SignUpView(props: { next: string | null }) {
  const [organisation, setOrganisation] = useState('');
  const [organisationName, setOrganisationName] = useState('');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    document.title = 'Create an organisation · Lightbulb';
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.signUp({
        organisation: organisation.trim(),
        organisation_name: organisationName.trim() || undefined,
        name: name.trim(),
        email: email.trim(),
        password,
      });
    } catch (e) {
      setError(formError(e));
      setBusy(false);
    }
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
        <label className="block-field">
          <span>
            Organisation id <span className="muted">(2–40 lower-case letters, digits or “-”)</span>
          </span>
          <input
            type="text"
            required
            pattern="[a-z0-9\-]{2,40}"
            title="2–40 lower-case letters, digits or -"
            value={organisation}
            onChange={(e) => setOrganisation(e.target.value)}
            data-testid="signup-organisation"
          />
        </label>
        <label className="block-field">
          Organisation name
          <input
            type="text"
            autoComplete="organization"
            value={organisationName}
            onChange={(e) => setOrganisationName(e.target.value)}
            data-testid="signup-organisation-name"
          />
        </label>
        <label className="block-field">
          <span>
            Your name <span className="muted">(letters, digits, “-”, “_”, “.” or “@”; shown with your labels)</span>
          </span>
          <input
            type="text"
            autoComplete="nickname"
            required
            value={name}
            onChange={(e) => setName(e.target.value)}
            data-testid="signup-name"
          />
        </label>
        <label className="block-field">
          E-mail
          <input
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            data-testid="signup-email"
          />
        </label>
        <label className="block-field">
          <span>
            Password <span className="muted">(at least {MIN_PASSWORD} characters)</span>
          </span>
          <input
            type="password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            data-testid="signup-password"
          />
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy} data-testid="signup-submit">
            {busy ? 'Creating…' : 'Create organisation'}
          </button>
        </div>
        <p className="muted">
          Have an account? <Link to={signIn}>Sign in</Link>.
        </p>
      </form>
    </main>
  );
}
