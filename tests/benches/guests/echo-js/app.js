// The `echo` fixture (tests/plugins/echo) in JavaScript, on the raw bindings: `noop`,
// `host-calls:N` (N calls of run.should-stop) and `echo:PAYLOAD`.
import { shouldStop } from 'sophon:host/run@0.2.0';

export const strategyApi = {
  run(config) {
    if (config === 'noop') {
      return { nodes: 0, summary: '' };
    }
    if (config.startsWith('host-calls:')) {
      const n = Number(config.slice('host-calls:'.length));
      let stops = 0;
      for (let i = 0; i < n; i++) {
        if (shouldStop()) stops++;
      }
      return { nodes: stops, summary: '' };
    }
    if (config.startsWith('echo:')) {
      return { nodes: 0, summary: config.slice('echo:'.length) };
    }
    throw `unknown command ${config}`;
  },
};
