import { useEffect, useState, type FormEvent } from 'react';

import { api, formError, type InvitationInfo } from '../api';
import { Bulb } from '../components/Bulb';
import { ErrorMessage } from '../components/ErrorMessage';
import { MIN_PASSWORD, SubmitButton, TextField } from '../components/Field';
import { Loading } from '../components/Loading';
import { dateTime } from '../format';
import { navigate } from '../router';
import { ROLE_NAMES } from '../roles';
import { useFormAction } from '../useFormAction';

/** `/invite/{token}`: who invites you, as what; your name and password join you. */
export function InviteView(props: { token: string }) {
  const { token } = props;
  // undefined while loading; null when the link does not work.
  const [invitation, setInvitation] = useState<InvitationInfo | null | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useFormAction();

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
    await run(
      async () => {
        await api.acceptInvitation(token, name.trim(), password);
        navigate('/projects', { replace: true });
      },
      { stayBusy: true },
    );
  };

  return (
    <main id="main" className="page auth-page">
      <div className="card auth-form" data-testid="invite-view">
        <h1 className="brand">
          <Bulb /> Join an organisation
        </h1>
        {invitation === undefined && (
          <Loading>Loading the invitation…</Loading>
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
            <TextField
              label="Your name"
              hint="letters, digits, “-”, “_”, “.” or “@”"
              type="text"
              autoComplete="nickname"
              value={name}
              onChange={setName}
              testId="invite-name"
            />
            <TextField
              label="Password"
              hint={
                `a new one of at least ${MIN_PASSWORD} characters; if you already have an account with this e-mail, ` +
                'its password — your name is then kept'
              }
              type="password"
              autoComplete="new-password"
              required
              value={password}
              onChange={setPassword}
              testId="invite-password"
            />
            <SubmitButton busy={busy} testId="invite-accept">
              {busy ? 'Joining…' : 'Accept and join'}
            </SubmitButton>
          </form>
        )}
      </div>
    </main>
  );
}
