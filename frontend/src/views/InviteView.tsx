import { useEffect, useState, type FormEvent } from 'react';

import { api, formError, type InvitationInfo } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { dateTime } from '../format';
import { navigate } from '../router';
import { ROLE_NAMES } from '../roles';

/** `/invite/{token}`: who invites you, as what; your name and password join you. */
export function InviteView(props: { token: string }) {
  const { token } = props;
  // undefined while loading; null when the link does not work.
  const [invitation, setInvitation] = useState<InvitationInfo | null | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    document.title = 'Invitation · Lightbulb';
    let live = true;
    api.invitation(token).then(
      (info) => live && setInvitation(info),
      (e: unknown) => {
        if (!live) return;
        setInvitation(null);
        setLoadError(formError(e));
      },
    );
    return () => {
      live = false;
    };
  }, [token]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.acceptInvitation(token, name.trim(), password);
      navigate('/projects', { replace: true });
    } catch (e) {
      setError(formError(e));
      setBusy(false);
    }
  };

  return (
    <main id="main" className="page auth-page">
      <div className="card auth-form" data-testid="invite-view">
        <h1 className="brand">
          <Bulb /> Join an organisation
        </h1>
        {invitation === undefined && (
          <p className="loading" role="status">
            Loading the invitation…
          </p>
        )}
        {invitation === null && (
          <ErrorMessage error={`This invitation link does not work: ${loadError ?? 'unknown error'}`} />
        )}
        {invitation && (
          <form onSubmit={(e) => void submit(e)} aria-label="Accept the invitation">
            <p>
              You are invited to <strong data-testid="invite-organisation">{invitation.organisation_name || invitation.organisation}</strong>{' '}
              <span className="muted">({invitation.organisation})</span> as{' '}
              <strong data-testid="invite-role">{ROLE_NAMES[invitation.role] ?? invitation.role}</strong>.
            </p>
            <p className="muted">
              For {invitation.email}; the link works until {dateTime(invitation.expires_at)}, once.
            </p>
            <ErrorMessage error={error} />
            <label className="block-field">
              <span>
                Your name <span className="muted">(letters, digits, “-”, “_”, “.” or “@”)</span>
              </span>
              <input
                type="text"
                autoComplete="nickname"
                value={name}
                onChange={(e) => setName(e.target.value)}
                data-testid="invite-name"
              />
            </label>
            <label className="block-field">
              <span>
                Password{' '}
                <span className="muted">
                  (a new one of at least 10 characters; if you already have an account with this e-mail, its password —
                  your name is then kept)
                </span>
              </span>
              <input
                type="password"
                autoComplete="new-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                data-testid="invite-password"
              />
            </label>
            <div className="actions">
              <button type="submit" className="primary" disabled={busy} data-testid="invite-accept">
                {busy ? 'Joining…' : 'Accept and join'}
              </button>
            </div>
          </form>
        )}
      </div>
    </main>
  );
}
