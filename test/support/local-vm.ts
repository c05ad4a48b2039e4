/**
 * One scale-set instance of the local ARM server, realised on this host as a
 * Linux VM would run it: a mount namespace of its own (util-linux `unshare`)
 * in which its OS disk (its own /etc, /opt, /usr/local, /var/lib, a fresh
 * /run) and its data disk (an ext4 image at /dev/disk/azure/scsi1/lun0, the
 * path Azure's udev rules give LUN 0) replace the host's, its user data run as
 * cloud-init runs it, and its systemd units honoured by this emulation.
 *
 * - First boot (a new instance, or a reimage: a new OS disk, the data disk
 *   kept): the user data is validated with Debian's `cloud-init schema`, then
 *   cloud-init's own code (`cc_write_files.write_files`, `util.shellify`)
 *   writes its files and its `runcmd` script, which runs under /bin/sh, as
 *   cloud-init's scripts-user module runs it (no `set -e` of its own):
 *   https://cloudinit.readthedocs.io/en/22.4/topics/modules.html#runcmd.
 *   Later boots (start, restart) start the enabled units only (runcmd runs
 *   once per instance).
 * - systemd does not run here. `systemctl` on the instance is a shim that
 *   calls back this emulation, which reads the installed unit and runs its
 *   ExecStartPre lines (`+`: as root), then its ExecStart as the unit's
 *   User/Group (`setpriv`), in the instance's namespace (`nsenter`), and
 *   ExecReload with $MAINPID. Not honoured: Restart=, NoNewPrivileges=,
 *   ProtectSystem=, LimitNOFILE=.
 * - Its network is its VNet's: a network namespace (local-network.ts) that it
 *   shares with the other instances of its VNet, where its private address
 *   (`hostname -I`, its NIC's) is local. The host cannot reach it there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface LocalVmOptions {
  /** The instance's folder: its OS disk (os/), data disk (lun0.img), logs. */
  dir: string;
  privateIp: string;
  /** Its VNet's network namespace (a path for `nsenter --net=`). */
  netns: string;
  /** Where the instance's `systemctl` shim calls back (the local ARM's agent route for this instance). */
  agentUrl: string;
  /** PEM bundle the instance trusts (its /etc/ssl/certs/ca-certificates.crt). */
  caBundle: string;
  /** Lines added to its /etc/hosts (the local cloud's names, e.g. its vault's). */
  hosts?: string[];
  /** Records each process of the instance (the local ARM's sweep of a run cut off). */
  onProcess(pid: number): void;
}

export interface ShellResult {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The data disk: https://learn.microsoft.com/azure/virtual-machines/linux/azure-to-guest-disk-mapping (udev's /dev/disk/azure/scsi1/lun<N>). */
const DATA_DISK = '/dev/disk/azure/scsi1/lun0';
const DATA_DISK_BYTES = 256 * 1024 * 1024;
/** The folders of the OS disk bound over the host's in the instance's namespace. */
const OS_DIRS: Record<string, string> = { '/etc': 'etc', '/opt': 'opt', '/usr/local': 'usr-local', '/var/lib': 'var-lib' };

function alive(p?: ChildProcess): p is ChildProcess {
  return !!p && p.exitCode === null && p.signalCode === null;
}

/** The mount namespace a process is in (`mnt:[4026532...]`), or undefined when it is gone. */
function mountNamespaceOf(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** SIGKILL to every process in this mount namespace (the host's is never passed here). */
function killNamespace(namespace: string): void {
  if (namespace === mountNamespaceOf(process.pid)) return;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (mountNamespaceOf(Number(entry)) !== namespace) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

async function stop(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (!alive(p)) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Splits a unit's command line as systemd does for plain words and double or single quotes. */
function splitCommand(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

interface Unit {
  user?: string;
  group?: string;
  execStartPre: string[];
  execStart?: string;
  execReload?: string;
  /** Restart= (only on-failure is honoured) and RestartSec= in seconds. */
  restart?: string;
  restartSec?: number;
}

function parseUnit(text: string): Unit {
  const unit: Unit = { execStartPre: [] };
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    if (section !== 'Service') continue;
    const [k, ...rest] = line.split('=');
    const v = rest.join('=');
    if (k === 'User') unit.user = v;
    else if (k === 'Group') unit.group = v;
    else if (k === 'ExecStartPre') unit.execStartPre.push(v);
    else if (k === 'ExecStart') unit.execStart = v;
    else if (k === 'ExecReload') unit.execReload = v;
    else if (k === 'Restart') unit.restart = v;
    else if (k === 'RestartSec') unit.restartSec = Number(v);
  }
  return unit;
}

export type BootState = 'off' | 'booting' | 'booted' | 'failed';

export class LocalVm {
  private holder?: ChildProcess;
  private readonly units = new Map<string, ChildProcess>();
  private bootState: BootState = 'off';
  private booting?: Promise<void>;
  readonly privateIp: string;

  constructor(private readonly opts: LocalVmOptions) {
    this.privateIp = opts.privateIp;
    fs.mkdirSync(opts.dir, { recursive: true });
  }

  get running(): boolean {
    return alive(this.holder);
  }

  get state(): BootState {
    return this.bootState;
  }

  /** Main pids of the units running (what the tests count as the instance's processes). */
  unitPids(): number[] {
    return [...this.units.values()].filter(alive).map((p) => p.pid!);
  }

  get dir(): string {
    return this.opts.dir;
  }

  private get osDir(): string {
    return path.join(this.opts.dir, 'os');
  }

  private log(name: string): number {
    return fs.openSync(path.join(this.opts.dir, name), 'a');
  }

  /**
   * Powers the instance on: its namespace with its disks; on a new OS disk,
   * cloud-init on the user data, else the enabled units. Resolves once the
   * namespace is up (Azure reports the VM running while cloud-init's final
   * stage, runcmd, still runs); `whenBooted()` waits for the boot.
   */
  async powerOn(userData: string): Promise<void> {
    if (this.running) return;
    const firstBoot = !fs.existsSync(path.join(this.osDir, 'etc'));
    if (firstBoot) this.makeOsDisk();
    if (!fs.existsSync(path.join(this.opts.dir, 'lun0.img'))) fs.writeFileSync(path.join(this.opts.dir, 'lun0.img'), '');
    fs.truncateSync(path.join(this.opts.dir, 'lun0.img'), DATA_DISK_BYTES);
    await this.startNamespace();
    this.bootState = 'booting';
    this.booting = (firstBoot ? this.cloudInit(userData) : this.startEnabledUnits()).then(
      () => void (this.bootState = 'booted'),
      (e: unknown) => {
        this.bootState = 'failed';
        fs.appendFileSync(path.join(this.opts.dir, 'boot.log'), `local-vm: boot failed: ${(e as Error).message}\n`);
      },
    );
  }

  async whenBooted(): Promise<BootState> {
    await this.booting;
    return this.bootState;
  }

  /** Everything on the instance stops (its units, then its namespace); the disks stay. */
  async powerOff(): Promise<void> {
    // Off from this moment (`running` is false): no unit starts any more, not even one whose ExecStartPre runs now.
    const holder = this.holder;
    this.holder = undefined;
    const namespace = holder?.pid === undefined ? undefined : mountNamespaceOf(holder.pid);
    while (this.units.size > 0) {
      const all = [...this.units.values()];
      this.units.clear();
      await Promise.all(all.map((p) => stop(p)));
    }
    // Power off: whatever else still runs on the instance (a script of Run Command, a unit started
    // behind the table's back) goes with it, as on a VM.
    if (namespace) killNamespace(namespace);
    await stop(holder, 'SIGKILL');
    this.bootState = 'off';
  }

  /** A new OS disk from the image; the data disk stays. */
  async reimage(): Promise<void> {
    await this.powerOff();
    fs.rmSync(this.osDir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    await this.powerOff();
    fs.rmSync(this.opts.dir, { recursive: true, force: true });
  }

  /** The image: the host's /etc (users, CA store) with the instance's trust bundle, empty /opt, /usr/local and /var/lib, and the shims. */
  private makeOsDisk(): void {
    fs.mkdirSync(this.osDir, { recursive: true });
    fs.cpSync('/etc', path.join(this.osDir, 'etc'), { recursive: true, verbatimSymlinks: true, filter: (src) => !src.startsWith('/etc/managed-consul') });
    const bundle = path.join(this.osDir, 'etc', 'ssl', 'certs', 'ca-certificates.crt');
    fs.rmSync(bundle, { force: true });
    fs.writeFileSync(bundle, this.opts.caBundle);
    if (this.opts.hosts?.length) fs.appendFileSync(path.join(this.osDir, 'etc', 'hosts'), `\n${this.opts.hosts.join('\n')}\n`);
    for (const d of ['opt', 'var-lib', 'usr-local/bin', 'usr-local/sbin']) fs.mkdirSync(path.join(this.osDir, d), { recursive: true, mode: 0o755 });
    const shim = (name: string, body: string) => fs.writeFileSync(path.join(this.osDir, 'usr-local', 'bin', name), body, { mode: 0o755 });
    // The VM's NIC address.
    shim('hostname', `#!/bin/sh\nif [ "\${1:-}" = -I ]; then echo '${this.privateIp} '; exit 0; fi\nexec /usr/bin/hostname "$@"\n`);
    // systemd's command line: enabling is local (as systemd's symlinks), the rest asks the emulation.
    shim('systemctl', [
      '#!/bin/sh',
      'set -eu',
      'now=""; args=""',
      'for a in "$@"; do case "$a" in --now) now=1 ;; -*) ;; *) args="$args $a" ;; esac; done',
      'set -- $args',
      'verb="${1:-}"; shift || true',
      // As systemctl: exit 1 and the reason on stderr when the job fails.
      'call() { out="$(mktemp)"; code="$(curl --silent --show-error -X POST --output "$out" --write-out "%{http_code}" "' + this.opts.agentUrl + '/systemctl/$1/$2")" || exit 1',
      '  if [ "$code" != 200 ]; then cat "$out" >&2; rm -f "$out"; exit 1; fi; cat "$out"; rm -f "$out"; }',
      'case "$verb" in',
      '  daemon-reload) exit 0 ;;',
      '  enable) for u in "$@"; do [ -f "/etc/systemd/system/$u" ] || { echo "Failed to enable unit: Unit file $u does not exist." >&2; exit 1; }',
      '    mkdir -p /etc/systemd/system/multi-user.target.wants; ln -sf "../$u" "/etc/systemd/system/multi-user.target.wants/$u"',
      '    [ -z "$now" ] || call start "$u"; done ;;',
      '  start|stop|restart|reload|is-active) for u in "$@"; do call "$verb" "$u"; done ;;',
      '  *) echo "systemctl (local VM): $verb is not emulated" >&2; exit 1 ;;',
      'esac',
      '',
    ].join('\n'));
  }

  private async startNamespace(): Promise<void> {
    fs.mkdirSync('/dev/disk', { recursive: true }); // the mount point of the namespace's own /dev/disk (empty on the host)
    const binds = Object.entries(OS_DIRS).map(([target, src]) => `mount --bind '${path.join(this.osDir, src)}' '${target}'`);
    const script = [
      'set -eu',
      ...binds,
      'mount -t tmpfs -o mode=0755 tmpfs /run',
      'mount -t tmpfs -o mode=0755 tmpfs /dev/disk',
      `mkdir -p '${path.dirname(DATA_DISK)}'`,
      `: > '${DATA_DISK}'`,
      `mount --bind '${path.join(this.opts.dir, 'lun0.img')}' '${DATA_DISK}'`,
      'echo up',
      'exec sleep infinity',
    ].join('\n');
    const err = this.log('namespace.log');
    const holder = spawn('nsenter', [`--net=${this.opts.netns}`, '--', 'unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', err], env: { PATH: PATH_ENV } });
    fs.closeSync(err);
    holder.on('error', () => undefined);
    if (holder.pid) this.opts.onProcess(holder.pid);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      holder.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('up\n')) resolve();
      });
      holder.once('exit', (code) => reject(new Error(`the instance's namespace did not come up (exit ${code}); see ${path.join(this.opts.dir, 'namespace.log')}`)));
    });
    this.holder = holder;
  }

  /** nsenter's arguments into the instance: its mount namespace and its VNet's network namespace. */
  private enter(): string[] {
    return [`--mount=/proc/${this.holder!.pid}/ns/mnt`, `--net=/proc/${this.holder!.pid}/ns/net`, '--'];
  }

  /** A command in the instance's namespace (as root unless `user`). */
  private spawnIn(argv: string[], opts: { user?: string; group?: string; log: string }): ChildProcess {
    if (!alive(this.holder)) throw new Error(`instance ${this.privateIp} is not running`);
    const as = opts.user ? ['setpriv', `--reuid=${opts.user}`, `--regid=${opts.group ?? opts.user}`, '--init-groups', '--'] : [];
    const fd = this.log(opts.log);
    const p = spawn('nsenter', [...this.enter(), ...as, ...argv], { stdio: ['ignore', fd, fd], env: { PATH: PATH_ENV, LANG: 'C.UTF-8' }, cwd: '/' });
    fs.closeSync(fd);
    p.on('error', () => undefined);
    if (p.pid) this.opts.onProcess(p.pid);
    return p;
  }

  private async runIn(argv: string[], opts: { user?: string; group?: string; log: string }): Promise<number | null> {
    const p = this.spawnIn(argv, opts);
    return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }

  /** A shell script as root in the instance (Run Command), its output captured. */
  async shell(script: string): Promise<ShellResult> {
    if (!alive(this.holder)) throw new Error(`instance ${this.privateIp} is not running`);
    const p = spawn('nsenter', [...this.enter(), '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: PATH_ENV, LANG: 'C.UTF-8' }, cwd: '/' });
    if (p.pid) this.opts.onProcess(p.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (b: Buffer) => out.push(b));
    p.stderr!.on('data', (b: Buffer) => err.push(b));
    const code = await new Promise<number | null>((resolve) => {
      p.once('error', () => resolve(127));
      p.once('close', (c) => resolve(c));
    });
    return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }

  /**
   * cloud-init on the user data: `cloud-init schema` first (an invalid
   * document: cloud-init would skip it), then, with cloud-init's own code,
   * write_files and the runcmd script, which runs under /bin/sh.
   */
  private async cloudInit(userData: string): Promise<void> {
    const doc = path.join(this.opts.dir, 'user-data');
    fs.writeFileSync(doc, userData, { mode: 0o600 });
    const schema = await this.runIn(['cloud-init', 'schema', '--config-file', doc], { log: 'boot.log' });
    if (schema !== 0) throw new Error('cloud-init schema refused the user data');
    const driver = [
      'import sys',
      'from cloudinit import util',
      'from cloudinit.config.cc_write_files import write_files',
      'cfg = util.load_yaml(open(sys.argv[1]).read())',
      "write_files('write_files', cfg.get('write_files') or [], 'root:root')",
      "if cfg.get('runcmd'): util.write_file('/var/lib/cloud/instance/scripts/runcmd', util.shellify(cfg['runcmd']), 0o700)",
    ].join('\n');
    if ((await this.runIn(['python3', '-c', driver, doc], { log: 'boot.log' })) !== 0) throw new Error('cloud-init: write_files failed');
    fs.rmSync(doc);
    // scripts-user: the runcmd script, executed as a program (its #!/bin/sh); its failure is cloud-init's error, not the VM's.
    const code = await this.runIn(['/bin/sh', '-c', '[ ! -e /var/lib/cloud/instance/scripts/runcmd ] || /var/lib/cloud/instance/scripts/runcmd'], { log: 'boot.log' });
    if (code !== 0) throw new Error(`cloud-init: runcmd exited ${code}`);
  }

  private async startEnabledUnits(): Promise<void> {
    const wants = path.join(this.osDir, 'etc', 'systemd', 'system', 'multi-user.target.wants');
    // The units installed on the instance (Debian's own, under /lib/systemd, are not emulated).
    for (const u of fs.existsSync(wants) ? fs.readdirSync(wants) : []) {
      if (fs.existsSync(path.join(this.osDir, 'etc', 'systemd', 'system', u))) await this.systemctl('start', u);
    }
  }

  private readUnit(name: string): Unit {
    if (!/^[\w.@-]+\.service$/.test(name)) throw new Error(`Unit ${name} not found.`);
    const file = path.join(this.osDir, 'etc', 'systemd', 'system', name);
    if (!fs.existsSync(file)) throw new Error(`Unit ${name} not found.`);
    return parseUnit(fs.readFileSync(file, 'utf8'));
  }

  /** What systemd would do for `systemctl <verb> <unit>`: throws what systemctl would print when it fails. */
  async systemctl(verb: string, name: string): Promise<string> {
    const running = this.units.get(name);
    if (verb === 'is-active') {
      if (!alive(running)) throw new Error('inactive');
      return 'active';
    }
    if (verb === 'stop') {
      await stop(running);
      this.units.delete(name);
      return '';
    }
    const unit = this.readUnit(name);
    if (verb === 'reload') {
      if (!alive(running)) throw new Error(`Job for ${name} failed: ${name} is not active, cannot reload.`);
      if (!unit.execReload) throw new Error(`Failed to reload ${name}: Job type reload is not applicable for unit ${name}.`);
      const code = await this.runIn(splitCommand(unit.execReload.replace(/\$\{?MAINPID\}?/g, String(running.pid))), { log: 'journal.log' });
      if (code !== 0) throw new Error(`Job for ${name} failed (ExecReload exited ${code}).`);
      return '';
    }
    if (verb === 'restart') {
      await stop(running);
      this.units.delete(name);
    } else if (verb !== 'start') {
      throw new Error(`Unknown command verb ${verb}.`);
    } else if (alive(running)) {
      return '';
    }
    if (!unit.execStart) throw new Error(`${name} has no ExecStart=`);
    for (const pre of unit.execStartPre) {
      const root = pre.startsWith('+');
      const ignoreFailure = pre.replace(/^\+/, '').startsWith('-');
      const argv = splitCommand(pre.replace(/^[+-]+/, ''));
      const code = await this.runIn(argv, { user: root ? undefined : unit.user, group: unit.group, log: 'journal.log' });
      if (code !== 0 && !ignoreFailure) throw new Error(`Job for ${name} failed because the control process exited with error code (ExecStartPre ${argv[0]}: ${code}).`);
    }
    // Powered off while ExecStartPre ran: nothing starts on a VM that is off (no process outlives its VM).
    if (!this.running) throw new Error(`Job for ${name} canceled: the VM is powered off.`);
    const main = this.spawnIn(splitCommand(unit.execStart), { user: unit.user, group: unit.group, log: 'journal.log' });
    this.units.set(name, main);
    // Restart=on-failure: a main process that exits unclean is started again after RestartSec, as
    // systemd does (https://www.freedesktop.org/software/systemd/man/systemd.service.html#Restart=),
    // unless the unit was stopped meanwhile (stop, restart, power-off take it out of the table).
    if (unit.restart === 'on-failure') {
      main.once('exit', (code, signal) => {
        if (code === 0 || signal === 'SIGTERM' || this.units.get(name) !== main) return;
        setTimeout(() => {
          if (this.units.get(name) !== main || !this.running) return;
          this.units.delete(name);
          this.systemctl('start', name).catch((e: unknown) => fs.appendFileSync(path.join(this.opts.dir, 'journal.log'), `local-vm: ${name} restart failed: ${(e as Error).message}\n`));
        }, (unit.restartSec ?? 0.1) * 1000).unref();
      });
    }
    return '';
  }
}
