// Live project state from the events WebSocket (docs/API.md, "Events"). While the socket is
// down the hook polls GET stats and reconnects with exponential back-off and jitter.
import { useCallback, useEffect, useRef, useState } from 'react';

import { api, describeError, type ServerEvent, type Stats } from './api';

export type Connection = 'connecting' | 'live' | 'polling';

export interface BatchReady {
  class: string;
  size: number;
  at: number;
}

export interface ProjectEvents {
  stats: Stats | null;
  connection: Connection;
  /** The last `batch_ready` event, so views can reload when one arrives. */
  batchReady: BatchReady | null;
  /** Seconds the last training run took, from `training_finished`. */
  lastTrainingSeconds: number | null;
  error: string | null;
  /** Fetch stats now (after an action whose effect the user waits to see). */
  refresh: () => void;
}

const POLL_MS = 5_000;
const MAX_BACKOFF_MS = 30_000;

export function applyEvent(stats: Stats | null, event: ServerEvent): Stats | null {
  switch (event.type) {
    case 'stats':
      return event.stats;
    case 'training_started':
      return stats && { ...stats, training: true };
    case 'training_finished':
      return (
        stats && {
          ...stats,
          training: false,
          model_version: event.model_version,
          accuracy: event.accuracy ?? stats.accuracy,
        }
      );
    case 'batch_ready':
      return stats;
  }
}

export function useProjectEvents(pid: string | null): ProjectEvents {
  const [stats, setStats] = useState<Stats | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [batchReady, setBatchReady] = useState<BatchReady | null>(null);
  const [lastTrainingSeconds, setLastTrainingSeconds] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const pollNow = useRef<() => void>(() => {});

  useEffect(() => {
    if (!pid) return;
    let closed = false;
    let socket: WebSocket | null = null;
    let attempt = 0;
    let retryTimer: number | undefined;
    let pollTimer: number | undefined;
    let inFlight: AbortController | null = null;
    setStats(null);
    setConnection('connecting');

    const poll = () => {
      inFlight?.abort();
      const controller = new AbortController();
      inFlight = controller;
      api.stats(pid, controller.signal).then(
        (fresh) => {
          if (closed || controller.signal.aborted) return;
          setStats(fresh);
          setError(null);
        },
        (e: unknown) => {
          if (closed || controller.signal.aborted) return;
          setError(describeError(e));
        },
      );
    };
    pollNow.current = poll;

    const startPolling = () => {
      if (pollTimer !== undefined) return;
      pollTimer = window.setInterval(poll, POLL_MS);
    };
    const stopPolling = () => {
      window.clearInterval(pollTimer);
      pollTimer = undefined;
    };

    const scheduleReconnect = () => {
      const delay = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      retryTimer = window.setTimeout(connect, delay);
    };

    const onEvent = (event: ServerEvent) => {
      setStats((current) => applyEvent(current, event));
      if (event.type === 'batch_ready') setBatchReady({ class: event.class, size: event.size, at: Date.now() });
      if (event.type === 'training_finished') setLastTrainingSeconds(event.seconds);
    };

    function connect() {
      if (closed) return;
      let ws: WebSocket;
      try {
        ws = new WebSocket(api.eventsUrl(pid!));
      } catch {
        setConnection('polling');
        startPolling();
        scheduleReconnect();
        return;
      }
      socket = ws;
      ws.onmessage = (message) => {
        if (typeof message.data !== 'string') return;
        let event: ServerEvent;
        try {
          event = JSON.parse(message.data) as ServerEvent;
        } catch {
          return;
        }
        // Only a socket that delivers resets the back-off; one that opens and drops does not.
        attempt = 0;
        setConnection('live');
        setError(null);
        stopPolling();
        onEvent(event);
      };
      ws.onclose = () => {
        if (socket === ws) socket = null;
        if (closed) return;
        setConnection('polling');
        poll();
        startPolling();
        scheduleReconnect();
      };
      ws.onerror = () => ws.close();
    }

    poll();
    connect();
    return () => {
      closed = true;
      inFlight?.abort();
      stopPolling();
      window.clearTimeout(retryTimer);
      socket?.close();
    };
  }, [pid]);

  const refresh = useCallback(() => pollNow.current(), []);
  return { stats, connection, batchReady, lastTrainingSeconds, error, refresh };
}
