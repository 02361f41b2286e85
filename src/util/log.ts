/** Leveled logfmt lines on stderr: `level=info msg="…" key=value`. */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
  return /^[\w./:@+-]+$/.test(s) ? s : JSON.stringify(s);
}

export class Logger {
  constructor(
    private level: LogLevel = 'info',
    private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  ) {}

  private log(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.level)) return;
    const kv = Object.entries(fields).map(([k, v]) => `${k}=${quote(v)}`);
    this.write([`time=${new Date().toISOString()}`, `level=${level}`, `msg=${quote(msg)}`, ...kv].join(' '));
  }

  debug(msg: string, fields: Record<string, unknown> = {}): void { this.log('debug', msg, fields); }
  info(msg: string, fields: Record<string, unknown> = {}): void { this.log('info', msg, fields); }
  warn(msg: string, fields: Record<string, unknown> = {}): void { this.log('warn', msg, fields); }
  error(msg: string, fields: Record<string, unknown> = {}): void { this.log('error', msg, fields); }
}
