// What each role may do in the browser (docs/ACCESS.md). The server enforces the same table on
// every route; the app only hides what a role cannot use.
import { ROLES, type Role } from './api';
import type { NavItem } from './components/LiveHeader';

export const canLabel = (role: Role) => role === 'labeller' || role === 'admin' || role === 'owner';
/** Export, API keys, members, project creation and settings. */
export const canAdmin = (role: Role) => role === 'admin' || role === 'owner';

/** The roles `mine` may give or take away: admins manage everyone below owner. */
export function assignableRoles(mine: Role): Role[] {
  if (mine === 'owner') return [...ROLES];
  if (mine === 'admin') return ROLES.filter((r) => r !== 'owner');
  return [];
}

export const ROLE_NAMES: Record<Role, string> = {
  owner: 'Owner',
  admin: 'Admin',
  labeller: 'Labeller',
  viewer: 'Viewer',
};

/** A project's views, as far as `role` may use them. */
export function projectNav(role: Role): NavItem[] {
  const items: NavItem[] = [];
  if (canLabel(role)) items.push({ view: 'label', label: 'Label' }, { view: 'batches', label: 'Batches' });
  items.push({ view: 'charts', label: 'Charts' }, { view: 'items', label: 'Dataset' }, { view: 'score', label: 'Score' });
  if (canAdmin(role)) items.push({ view: 'export', label: 'Export' });
  items.push({ view: 'settings', label: 'Settings' });
  if (canAdmin(role)) items.push({ view: 'keys', label: 'API keys' });
  return items;
}
