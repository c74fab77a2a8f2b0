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
import { DataTable } from '../components/DataTable';
import { ErrorMessage } from '../components/ErrorMessage';
import { Field, NewPasswordField, SubmitButton, TextField } from '../components/Field';
import { Loading } from '../components/Loading';
import { dateTime } from '../format';
import { assignableRoles, ROLE_NAMES } from '../roles';
import { useFormAction } from '../useFormAction';

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
        <Loading />
      ) : (
        <DataTable columns={['Name', 'E-mail', 'Role']} actions testId="members-table">
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
                    <RoleOptions
                      roles={roles}
                      value={m.role}
                      onChange={(next) => changeRole(m, next)}
                      aria-label={`Role of ${m.name}`}
                      testId="member-role"
                    />
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
        </DataTable>
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
        <DataTable columns={['E-mail', 'Role', 'Sent', 'Expires']} actions testId="invitations-table">
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
        </DataTable>
      )}
    </section>
  );
}

/** A select of the roles one may give. */
function RoleOptions(props: {
  roles: Role[];
  value: Role;
  onChange: (r: Role) => void;
  testId: string;
  'aria-label'?: string;
}) {
  return (
    <select
      value={props.value}
      onChange={(e) => props.onChange(e.target.value as Role)}
      aria-label={props['aria-label']}
      data-testid={props.testId}
    >
      {props.roles.map((r) => (
        <option key={r} value={r}>
          {ROLE_NAMES[r]}
        </option>
      ))}
    </select>
  );
}

function RoleSelect(props: { roles: Role[]; value: Role; onChange: (r: Role) => void; testId: string }) {
  return (
    <Field label="Role">
      <RoleOptions {...props} />
    </Field>
  );
}

/** Invite by e-mail: the answer's link is shown once, to copy and send. */
function InviteForm(props: { roles: Role[]; onInvited: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('labeller');
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const { busy, error, setError, run } = useFormAction();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setCreated(null);
    await run(async () => {
      setCreated(await api.invite(email.trim(), role));
      setEmail('');
      props.onInvited();
    });
  };

  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-labelledby="invite-title" data-testid="invite-form">
      <h2 id="invite-title">Invite by link</h2>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      <TextField label="E-mail" type="email" required value={email} onChange={setEmail} testId="invite-email" />
      <RoleSelect roles={props.roles} value={role} onChange={setRole} testId="invite-role-select" />
      <SubmitButton busy={busy} testId="invite-submit">
        Create invitation link
      </SubmitButton>
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
  const { busy, error, setError, run } = useFormAction();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    await run(async () => {
      const member = await api.addMember({ email: email.trim(), name: name.trim(), password, role });
      setEmail('');
      setName('');
      setPassword('');
      props.onAdded({ ...member, email: member.email ?? email.trim() });
    });
  };

  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-labelledby="add-member-title" data-testid="add-member-form">
      <h2 id="add-member-title">Add with a password</h2>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      <TextField label="E-mail" type="email" required value={email} onChange={setEmail} testId="add-member-email" />
      <TextField label="Name" type="text" required value={name} onChange={setName} testId="add-member-name" />
      <NewPasswordField
        label="First password"
        hint="at least 10 characters; tell them to change it"
        value={password}
        onChange={setPassword}
        testId="add-member-password"
      />
      <RoleSelect roles={props.roles} value={role} onChange={setRole} testId="add-member-role" />
      <SubmitButton busy={busy} testId="add-member-submit">
        Add member
      </SubmitButton>
    </form>
  );
}
