import type { Logger } from "@raftka/monitoring";
import type { RecoveryReport } from "@raftka/storage";

type RecoveryReportFields = Pick<
  RecoveryReport,
  | "directory"
  | "cleanShutdown"
  | "truncations"
  | "deletedSegments"
  | "removedFiles"
  | "orphanIndexFiles"
  | "checkpointProblems"
  | "offsetGaps"
>;

/**
 * Logs what opening a partition's log found and did, one line per finding, each saying what it means
 * for the records and what to do. After a crash a torn tail is routine (warn); after a clean shutdown
 * nothing should have been cut, so a cut means the files were damaged or edited (error).
 */
export function logRecoveryReport(
  logger: Logger,
  where: { topic: string; partition: number },
  report: RecoveryReportFields,
): void {
  const partition = `${where.topic}-${where.partition}`;
  for (const cut of report.truncations) {
    const lost = cut.lostOffsets;
    const offsets =
      lost === undefined
        ? "no offsets"
        : lost.to === undefined
          ? `offsets from ${lost.from} on`
          : `offsets ${lost.from}-${lost.to}`;
    const fields = {
      ...where,
      segmentBaseOffset: cut.segmentBaseOffset,
      validBytes: cut.validBytes,
      removedBytes: cut.removedBytes,
      reason: cut.reason,
      lostOffsets: lost,
      cleanShutdown: report.cleanShutdown,
    };
    if (report.cleanShutdown) {
      logger.error(
        fields,
        `partition ${partition}: its last clean shutdown left a whole log, yet segment ${cut.segmentBaseOffset} ` +
          `had to be cut at byte ${cut.validBytes} (${cut.removedBytes} bytes removed: ${cut.reason}); ${offsets} ` +
          "are lost on this node, acknowledged records among them. The files were damaged or edited while the " +
          "broker was stopped: check the disk, and restore the partition from a backup if those records matter",
      );
    } else {
      logger.warn(
        fields,
        `partition ${partition}: recovery after an unclean shutdown cut segment ${cut.segmentBaseOffset} at byte ` +
          `${cut.validBytes} (${cut.removedBytes} bytes removed: ${cut.reason}); ${offsets} were not durable and are ` +
          "gone (normal for a torn last write; if records were acknowledged with acks=all, check the disk)",
      );
    }
  }
  if (report.deletedSegments.length > 0) {
    logger.warn(
      { ...where, deletedSegments: report.deletedSegments, cleanShutdown: report.cleanShutdown },
      `partition ${partition}: recovery removed ${report.deletedSegments.length} segment(s) that could not ` +
        "continue the log (see deletedSegments for why); their records are lost on this node",
    );
  }
  for (const gap of report.offsetGaps) {
    logger.error(
      { ...where, from: gap.from, to: gap.to, reason: gap.reason },
      `partition ${partition}: offsets ${gap.from}-${gap.to} are missing: ${gap.reason}. Consumers skip from ` +
        `${gap.from} to ${gap.to + 1}; restore the file from a backup to get the records back`,
    );
  }
  for (const problem of report.checkpointProblems) {
    const consequence = problem.startsWith("log-start-offset-checkpoint")
      ? "the log start offset was reset to the base offset of the first segment, so records removed by " +
        "DeleteRecords may be readable again: repeat the DeleteRecords if they must stay gone"
      : "it was rebuilt from the segments' batch headers; nothing is lost";
    logger.warn(
      { ...where, problem },
      `partition ${partition}: error reading checkpoint ${problem}; ${consequence}`,
    );
  }
  if (report.removedFiles.length > 0) {
    // Leftovers of interrupted deletions and temporary files are routine; index files whose segment
    // went missing without a deletion are not, and the gap they reveal is logged above.
    const orphans = report.orphanIndexFiles;
    const fields = { ...where, removedFiles: report.removedFiles };
    if (orphans.length > 0) {
      logger.warn(
        fields,
        `partition ${partition}: removed ${orphans.length} index file(s) whose segment file is missing (${orphans.join(", ")})`,
      );
    } else {
      logger.info(fields, `partition ${partition}: removed leftover files of interrupted operations`);
    }
  }
}
