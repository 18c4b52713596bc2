import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';

interface HandleProto {
  datasync: (this: { fd: number }) => Promise<void>;
}

/** Counts (and can hold back) FileHandle.datasync calls, the fsyncs of segment appends. */
export async function instrumentDatasync(dir: string) {
  const probe = await openFile(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as HandleProto;
  await probe.close();
  const original = proto.datasync;
  const calls: { fd: number; at: number }[] = [];
  let gate: Promise<void> | undefined;
  let failing: ((fd: number) => boolean) | undefined;
  proto.datasync = async function (this: { fd: number }) {
    calls.push({ fd: this.fd, at: performance.now() });
    if (gate !== undefined) await gate;
    if (failing?.(this.fd) === true) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    return original.call(this);
  };
  return {
    calls,
    hold(): () => void {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      return () => {
        gate = undefined;
        open();
      };
    },
    /** Fails (EIO) the calls on the file descriptors `which` picks, from now on. */
    failWhen(which: (fd: number) => boolean): void {
      failing = which;
    },
    /** Lets the calls from now on through while those already held stay held. */
    pass(): void {
      gate = undefined;
    },
    restore: () => {
      proto.datasync = original;
    },
  };
}

