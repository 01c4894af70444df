// Builds the `cerebrum` binary once (cargo, in the workspace's target directory) and hands its
// path to the tests as CEREBRUM_BIN. An existing CEREBRUM_BIN is used as it is.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  if (process.env.CEREBRUM_BIN && existsSync(process.env.CEREBRUM_BIN)) return;
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  execFileSync('cargo', ['build', '-p', 'cerebrum-cli'], { cwd: root, stdio: 'inherit' });
  const metadata = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root, encoding: 'utf8' }),
  ) as { target_directory: string };
  const bin = join(metadata.target_directory, 'debug', 'cerebrum');
  if (!existsSync(bin)) throw new Error(`cargo built no ${bin}`);
  process.env.CEREBRUM_BIN = bin;
}
