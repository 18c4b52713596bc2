/* global process */
// Loaded into a server under test with `node --import` (bench/cpu.ts) when
// SWITCHYARD_HEAP_SAMPLING_FILE is set: V8's sampling heap profiler, counting objects the GC has
// already collected too, so the profile is what was allocated (garbage included) and where. The
// bench opens the window with SIGUSR2 and closes it with a second SIGUSR2; the profile is then
// written to the file (through a temporary name, so a reader never sees half of it).
// With SWITCHYARD_HEAP_SAMPLING_SURVIVORS=1 the objects the young generation's scavenges collect
// are left out: the profile is then what outlived them — promoted to the old generation, where
// it stays live or becomes the garbage a mark-compact collects.
// Plain JavaScript because the server runs compiled JavaScript, of this checkout or another.
import { writeFileSync, renameSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.SWITCHYARD_HEAP_SAMPLING_FILE;
const survivorsOnly = process.env.SWITCHYARD_HEAP_SAMPLING_SURVIVORS === '1';
if (out) {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.enable', () =>
        session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivorsOnly }),
      );
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (err) {
        process.stderr.write(`heap sampling failed: ${err.message}\n`);
        return;
      }
      writeFileSync(`${out}.part`, JSON.stringify(result.profile));
      renameSync(`${out}.part`, out);
    });
  });
}
