import { useCallback, useEffect, useState, type FormEvent } from 'react';

import { api, describeError, formError, SCOPES, type ApiKey, type CreatedApiKey, type Project, type Scope } from '../api';
import { CopyField } from '../components/CopyField';
import { DataTable } from '../components/DataTable';
import { ErrorMessage } from '../components/ErrorMessage';
import { SubmitButton, TextField } from '../components/Field';
import { Loading } from '../components/Loading';
import { dateTime } from '../format';
import { useFormAction } from '../useFormAction';

const SCOPE_TEXT: Record<Scope, string> = {
  score: 'score: POST …/score with new data',
  read: 'read: the project, items, stats and events',
};

/** `/projects/{pid}/keys` (admin, owner): the project's API keys for programs. */
export function KeysView(props: { project: Project }) {
  const { project } = props;
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Set<Scope>>(new Set(['score']));
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const { busy, error, setError, run } = useFormAction();

  const load = useCallback(async () => {
    try {
      setKeys(await api.apiKeys(project.id));
    } catch (e) {
      setError(describeError(e));
    }
  }, [project.id]);

  useEffect(() => {
    document.title = `${project.title || project.id}: API keys · Lightbulb`;
    void load();
  }, [load, project]);

  const toggle = (scope: Scope) =>
    setScopes((current) => {
      const next = new Set(current);
      if (next.has(scope)) next.delete(scope);
      else next.add(scope);
      return next;
    });

  const create = async (event: FormEvent) => {
    event.preventDefault();
    if (scopes.size === 0) return setError('Pick at least one scope.');
    setCreated(null);
    await run(async () => {
      setCreated(await api.createApiKey(project.id, name.trim(), SCOPES.filter((s) => scopes.has(s))));
      setName('');
      await load();
    });
  };

  const revoke = async (key: ApiKey) => {
    if (!window.confirm(`Revoke the key “${key.name}”? Programs using it stop working at once.`)) return;
    setError(null);
    try {
      await api.revokeApiKey(project.id, key.id);
    } catch (e) {
      setError(formError(e));
    }
    await load();
  };

  return (
    <section aria-labelledby="keys-title" data-testid="keys-view">
      <h1 id="keys-title">API keys</h1>
      <p className="muted">
        Programs send a key as <code>Authorization: Bearer lb_…</code>. A key works for this project only, with its scopes.
      </p>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />

      <form className="card form" onSubmit={(e) => void create(e)} aria-labelledby="new-key-title">
        <h2 id="new-key-title">New key</h2>
        <TextField
          label="Name"
          type="text"
          required
          maxLength={100}
          value={name}
          onChange={setName}
          placeholder="e.g. nightly scoring job"
          testId="key-name"
        />
        <fieldset className="segmented">
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s} className="inline-field">
              <input type="checkbox" checked={scopes.has(s)} onChange={() => toggle(s)} data-testid={`key-scope-${s}`} />
              {SCOPE_TEXT[s]}
            </label>
          ))}
        </fieldset>
        <SubmitButton busy={busy} testId="key-create">
          Create key
        </SubmitButton>
        {created && (
          <CopyField
            label={`Key “${created.name}”`}
            value={created.key}
            testId="new-key"
            note="Shown only now: copy it into the program's settings. Lightbulb keeps only its digest."
          />
        )}
      </form>

      {keys === null ? (
        <Loading />
      ) : keys.length === 0 ? (
        <p className="muted" data-testid="no-keys">
          No keys yet.
        </p>
      ) : (
        <DataTable columns={['Name', 'Key', 'Scopes', 'Created', 'Last used', 'State']} actions testId="keys-table">
          {keys.map((k) => (
            <tr key={k.id} data-testid="key-row" data-revoked={k.revoked}>
              <td>{k.name}</td>
              <td>
                <code>lb_{k.prefix}_…</code>
              </td>
              <td>{k.scopes.join(', ')}</td>
              <td>{dateTime(k.created_at)}</td>
              <td>{k.last_used_at ? dateTime(k.last_used_at) : <span className="muted">never</span>}</td>
              <td>{k.revoked ? <span className="muted">revoked</span> : 'active'}</td>
              <td>
                {!k.revoked && (
                  <button type="button" onClick={() => void revoke(k)} aria-label={`Revoke the key ${k.name}`} data-testid="key-revoke">
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
