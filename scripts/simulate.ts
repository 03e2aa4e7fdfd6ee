/**
 * CentrePoint webhook simulator: `npm run simulate -- --url <relay>/webhooks/<source> [options]`.
 * Sends a validation handshake, then realistic per-subject event sequences with CentrePoint's
 * headers and credentials, some duplicates and some wrong credentials; prints a summary and
 * exits 1 if any response differed from what was expected (2 on bad arguments).
 */
import { randomInt } from "node:crypto";
import { createSender } from "../harness/http/client.ts";
import { createRng } from "../harness/prng.ts";
import { parseSimulateArgs, USAGE } from "../harness/simulator/args.ts";
import { type Progress, runSimulation } from "../harness/simulator/run.ts";
import { formatProgress, formatSummary } from "../harness/simulator/summary.ts";

const PROGRESS_LINE_EVERY_MS = 2_000;

/** Progress on stderr: a redrawn bar on a TTY, otherwise a plain line every couple of seconds. */
function createProgressReporter(): { report: (p: Progress) => void; end: () => void } {
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  let drawn = false;
  return {
    report: (p) => {
      if (tty) {
        process.stderr.write(`\r${formatProgress(p.done, p.total, p.byStatus, p.unexpected, 30)}\x1b[K`);
        drawn = true;
      } else if (Date.now() - lastLine >= PROGRESS_LINE_EVERY_MS || p.done === p.total) {
        process.stderr.write(`simulate: ${formatProgress(p.done, p.total, p.byStatus, p.unexpected, 0)}\n`);
        lastLine = Date.now();
      }
    },
    end: () => {
      if (drawn) process.stderr.write("\n");
    },
  };
}

async function main(): Promise<number> {
  const parsed = parseSimulateArgs(process.argv.slice(2), () => randomInt(2 ** 32 - 1));
  if (!parsed.ok) {
    process.stderr.write(`simulate: ${parsed.error}\nRun with --help for usage.\n`);
    return 2;
  }
  if (parsed.value === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const options = parsed.value;
  const sender = createSender({ concurrency: options.concurrency, timeoutMs: options.timeoutMs });
  const abort = new AbortController();
  const onSignal = () => {
    process.stderr.write("\nsimulate: interrupted; waiting for requests in flight, then summarizing\n");
    abort.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const progress = createProgressReporter();
  try {
    const summary = await runSimulation(options, {
      send: sender.send,
      idRng: createRng(randomInt(2 ** 32 - 1)),
      onProgress: progress.report,
      signal: abort.signal,
    });
    progress.end();
    process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
    if (abort.signal.aborted) return 130;
    return summary.ok ? 0 : 1;
  } finally {
    sender.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

process.exitCode = await main();
