import { useCallback, useEffect, useState, type FormEvent } from 'react';

import {
  api,
  describeError,
  formError,
  type CreatedInvitation,
  type Me,
  type Member,
  type PendingInvitation,
  type Role,
} from '../api';
import { CopyField } from '../components/CopyField';
import { ErrorMessage } from '../components/ErrorMessage';
import { dateTime } from '../format';
import { assignableRoles, ROLE_NAMES } from '../roles';

/** `/members` (admin, owner): the organisation's members and roles, invitations by link, and
 * accounts created with a first password. */
export function MembersView(props: { me: Me | null; role: Role }) {
  const { me, role } = props;
  const [members, setMembers] = useState<Member[] | null>(null);
  const [invitations, setInvitations] = useState<PendingInvitation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const roles = assignableRoles(role);

  const load = useCallback(async () => {
    try {
      const [m, i] = await Promise.all([api.members(), api.invitations()]);
      setMembers(m);
      setInvitations(i);
    } catch (e) {
      setError(describeError(e));
    }
  }, []);

  useEffect(() => {
    document.title = 'Members · Lightbulb';
    void load();
  }, [load]);

  const act = async (action: () => Promise<unknown>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await action();
      setNotice(done);
    } catch (e) {
      setError(formError(e));
    }
    await load();
  };

  const changeRole = (m: Member, next: Role) =>
    void act(() => api.setRole(m.user_id, next), `${m.name} is now ${ROLE_NAMES[next].toLowerCase()}.`);
  const remove = (m: Member) => {
    if (!window.confirm(`Remove ${m.name} (${m.email}) from the organisation? Their sessions end at once.`)) return;
    void act(() => api.removeMember(m.user_id), `${m.name} was removed.`);
  };
  const revoke = (i: PendingInvitation) =>
    void act(() => api.revokeInvitation(i.id), `The invitation for ${i.email} no longer works.`);

  return (
    <section aria-labelledby="members-title" data-testid="members-view">
      <h1 id="members-title">Members{me && <span className="muted"> · {me.organisation_name || me.organisation}</span>}</h1>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}

      {members === null ? (
        <p className="loading" role="status">
          Loading…
        </p>
      ) : (
        <div className="table-scroll">
          <table className="data-table" data-testid="members-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">E-mail</th>
                <th scope="col">Role</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {members.map((m) => {
                const self = m.user_id === me?.user_id;
                const manageable = !self && roles.includes(m.role);
                return (
                  <tr key={m.user_id} data-testid="member-row" data-email={m.email}>
                    <td>
                      {m.name}
                      {self && <span className="muted"> (you)</span>}
                    </td>
                    <td>{m.email}</td>
                    <td>
                      {manageable ? (
                        <select
                          value={m.role}
                          onChange={(e) => changeRole(m, e.target.value as Role)}
                          aria-label={`Role of ${m.name}`}
                          data-testid="member-role"
                        >
                          {roles.map((r) => (
                            <option key={r} value={r}>
                              {ROLE_NAMES[r]}
                            </option>
                          ))}
                        </select>
                      ) : (
                        ROLE_NAMES[m.role] ?? m.role
                      )}
                    </td>
                    <td>
                      {manageable && (
                        <button type="button" onClick={() => remove(m)} aria-label={`Remove ${m.name}`} data-testid="member-remove">
                          Remove
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      <div className="members-forms">
        <InviteForm roles={roles} onInvited={() => void load()} />
        <AddMemberForm roles={roles} onAdded={(m) => void act(async () => m, `${m.name} can now sign in.`)} />
      </div>

      <h2>Pending invitations</h2>
      {invitations === null ? null : invitations.length === 0 ? (
        <p className="muted" data-testid="no-invitations">
          None.
        </p>
      ) : (
        <div className="table-scroll">
          <table className="data-table" data-testid="invitations-table">
            <thead>
              <tr>
                <th scope="col">E-mail</th>
                <th scope="col">Role</th>
                <th scope="col">Sent</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {invitations.map((i) => (
                <tr key={i.id} data-testid="invitation-row" data-email={i.email}>
                  <td>{i.email}</td>
                  <td>{ROLE_NAMES[i.role] ?? i.role}</td>
                  <td>{dateTime(i.created_at)}</td>
                  <td>{dateTime(i.expires_at)}</td>
                  <td>
                    <button
                      type="button"
                      onClick={() => revoke(i)}
                      aria-label={`Revoke the invitation for ${i.email}`}
                      data-testid="invitation-revoke"
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RoleSelect(props: { roles: Role[]; value: Role; onChange: (r: Role) => void; testId: string }) {
  return (
    <label className="block-field">
      Role
      <select value={props.value} onChange={(e) => props.onChange(e.target.value as Role)} data-testid={props.testId}>
        {props.roles.map((r) => (
          <option key={r} value={r}>
            {ROLE_NAMES[r]}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Invite by e-mail: the answer's link is shown once, to copy and send. */
function InviteForm(props: { roles: Role[]; onInvited: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('labeller');
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setCreated(null);
    try {
      setCreated(await api.invite(email.trim(), role));
      setEmail('');
      props.onInvited();
    } catch (e) {
      setError(formError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-labelledby="invite-title" data-testid="invite-form">
      <h2 id="invite-title">Invite by link</h2>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      <label className="block-field">
        E-mail
        <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} data-testid="invite-email" />
      </label>
      <RoleSelect roles={props.roles} value={role} onChange={setRole} testId="invite-role-select" />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy} data-testid="invite-submit">
          Create invitation link
        </button>
      </div>
      {created && (
        <CopyField
          label={`Invitation link for ${created.email} (${ROLE_NAMES[created.role] ?? created.role})`}
          value={new URL(created.url, window.location.origin).toString()}
          testId="invite-link"
          note="Shown only now: copy it and send it to them. It works once."
        />
      )}
    </form>
  );
}

/** An account with a first password, for people who cannot receive a link. */
function AddMemberForm(props: { roles: Role[]; onAdded: (m: Member) => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('labeller');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const member = await api.addMember({ email: email.trim(), name: name.trim(), password, role });
      setEmail('');
      setName('');
      setPassword('');
      props.onAdded({ ...member, email: member.email ?? email.trim() });
    } catch (e) {
      setError(formError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-labelledby="add-member-title" data-testid="add-member-form">
      <h2 id="add-member-title">Add with a password</h2>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      <label className="block-field">
        E-mail
        <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} data-testid="add-member-email" />
      </label>
      <label className="block-field">
        Name
        <input type="text" required value={name} onChange={(e) => setName(e.target.value)} data-testid="add-member-name" />
      </label>
      <label className="block-field">
        <span>
          First password <span className="muted">(at least 10 characters; tell them to change it)</span>
        </span>
        <input
          type="password"
          autoComplete="new-password"
          required
          minLength={10}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          data-testid="add-member-password"
        />
      </label>
      <RoleSelect roles={props.roles} value={role} onChange={setRole} testId="add-member-role" />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy} data-testid="add-member-submit">
          Add member
        </button>
      </div>
    </form>
  );
}
