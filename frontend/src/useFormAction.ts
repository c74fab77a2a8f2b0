import { useCallback, useState } from 'react';

import { formError } from './api';

/**
 * A form's submission state: `busy` while an action runs, and the error it failed with.
 * `run(action)` clears the error, marks the form busy and runs `action`; a failure shows
 * {@link formError} of it. The form is no longer busy once the action ends, unless it succeeded
 * with `stayBusy` (the page moves on, e.g. after signing in).
 */
export function useFormAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = useCallback(async (action: () => Promise<unknown>, options?: { stayBusy?: boolean }) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      if (!options?.stayBusy) setBusy(false);
    } catch (e) {
      setError(formError(e));
      setBusy(false);
    }
  }, []);

  return { busy, error, setError, run };
}
