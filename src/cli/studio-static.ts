/** `latentblend studio --static DIR`: writes the studio as a static site that runs in the browser. */
import { resolve } from 'node:path';
import { writeStaticSite } from '../studio/static-site.ts';
import type { Reporter } from '../film/progress.ts';

/** Flags of `studio` that the static site uses. */
export interface StaticStudioFlags {
  readonly static: string;
  readonly model: string;
  readonly lpips?: string;
  readonly force?: boolean;
}

/** Writes the site and says how to serve it. */
export async function writeStaticStudio(flags: StaticStudioFlags, reporter: Reporter): Promise<void> {
  const outDir = resolve(flags.static);
  const files = await writeStaticSite({
    outDir,
    model: flags.model,
    ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
    ...(flags.force === true ? { force: true } : {}),
  });
  reporter.info(`wrote ${files.length} files; serve the folder from any static host (https, or http://localhost to try it: \`npx http-server ${flags.static}\` or \`python3 -m http.server -d ${flags.static}\`)`);
  process.stdout.write(`latentblend studio: static site in ${outDir}\n`);
}
