import { useEffect, useRef, useState } from 'react';

import { api, formError, type Me, type Role, type StoredSession } from '../api';
import { Bulb } from './Bulb';
import { ErrorMessage } from './ErrorMessage';
import { Link, navigate } from '../router';
import { canAdmin, ROLE_NAMES } from '../roles';

/** Hosted mode's top bar: organisation switcher, site links and the user menu. */
export function HostedBar(props: { me: Me | null; role: Role; current: StoredSession; page: string }) {
  const { me, role, current, page } = props;
  const [switching, setSwitching] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const menu = useRef<HTMLDetailsElement>(null);

  const organisations = me?.organisations?.length
    ? me.organisations
    : me
      ? [{ id: me.organisation_id, slug: me.organisation, name: me.organisation_name, role: me.role }]
      : [];
  const currentSlug = organisations.find((o) => o.id === current.organisation_id)?.slug ?? me?.organisation ?? '';

  const switchTo = async (slug: string) => {
    if (!slug || slug === currentSlug) return;
    setSwitching(true);
    setError(null);
    try {
      // The new session has another organisation: the app reloads its projects for it.
      await api.switchOrganisation(slug);
      navigate('/projects');
    } catch (e) {
      setError(`Could not switch organisation: ${formError(e)}`);
    } finally {
      setSwitching(false);
    }
  };

  const signOut = async () => {
    if (menu.current) menu.current.open = false;
    try {
      await api.logout();
    } catch {
      // Signed out here anyway; the server ends the session when its tokens expire.
    }
    navigate('/signin');
  };

  // The menu closes on navigation, on a click elsewhere and on Escape.
  useEffect(() => {
    if (menu.current) menu.current.open = false;
  }, [page]);
  useEffect(() => {
    const close = (event: Event) => {
      const details = menu.current;
      if (!details?.open) return;
      if (event instanceof KeyboardEvent ? event.key === 'Escape' : !details.contains(event.target as Node)) {
        details.open = false;
      }
    };
    document.addEventListener('click', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('click', close);
      document.removeEventListener('keydown', close);
    };
  }, []);

  return (
    <header className="topbar hosted-bar" data-testid="hosted-bar">
      <div className="topbar__row">
        <Link to="/projects" className="brand">
          <Bulb /> Lightbulb
        </Link>
        <label className="org-picker">
          <span className="visually-hidden">Organisation</span>
          <select
            value={currentSlug}
            onChange={(e) => void switchTo(e.target.value)}
            disabled={switching || organisations.length === 0}
            data-testid="org-switcher"
            aria-describedby="org-role"
          >
            {organisations.map((o) => (
              <option key={o.slug} value={o.slug}>
                {o.name || o.slug}
              </option>
            ))}
          </select>
        </label>
        <span id="org-role" className="muted" data-testid="my-role">
          {ROLE_NAMES[role] ?? role}
        </span>
        <nav aria-label="Site" className="nav">
          <Link to="/projects" className="nav__link" current={page === 'projects'} testId="nav-projects">
            Projects
          </Link>
          {canAdmin(role) && (
            <Link to="/members" className="nav__link" current={page === 'members'} testId="nav-members">
              Members
            </Link>
          )}
          <details className="user-menu" ref={menu} data-testid="user-menu">
            <summary className="nav__link" aria-label={`Account menu of ${me?.name ?? 'you'}`}>
              {me?.name ?? 'Account'}
            </summary>
            <div className="user-menu__panel">
              {me && (
                <p className="muted">
                  {me.email}
                  <br />
                  {me.organisation_name || me.organisation} · {ROLE_NAMES[role] ?? role}
                </p>
              )}
              <Link to="/account" testId="nav-account">
                Account and password
              </Link>
              <button type="button" onClick={() => void signOut()} data-testid="sign-out">
                Sign out
              </button>
            </div>
          </details>
        </nav>
      </div>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
    </header>
  );
}
