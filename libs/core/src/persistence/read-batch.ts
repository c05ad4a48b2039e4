/**
 * Reads of one kind that arrive while others are in flight go to the database together, in one
 * statement, when a statement of theirs ends. Under load a request's read costs a share of one
 * round trip (one write to the database's socket, one result to parse) instead of a whole one;
 * when nothing is in flight a read goes at once, so a lone request waits for nobody. It is not a
 * cache: every read is a statement that starts after its request arrived, and each caller gets
 * its own row (the same key asked twice is read twice).
 */
export class ReadBatch<A, R> {
  private queued: Array<{ args: A; resolve: (r: R | null) => void; reject: (e: unknown) => void }> = [];
  private inFlight = 0;

  /**
   * @param run one statement for all the reads' arguments, answering each read's row (or null) in
   *   the order of the arguments
   * @param maxInFlight statements at once (the database works on one while the next batch gathers)
   * @param maxBatch reads in one statement at most
   */
  constructor(
    private readonly run: (args: A[]) => Promise<Array<R | null>>,
    private readonly maxInFlight = 2,
    private readonly maxBatch = 100,
  ) {}

  load(args: A): Promise<R | null> {
    return new Promise<R | null>((resolve, reject) => {
      this.queued.push({ args, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queued.length > 0) {
      const batch = this.queued.splice(0, this.maxBatch);
      this.inFlight++;
      this.run(batch.map((b) => b.args)).then(
        (rows) => batch.forEach((b, i) => b.resolve(rows[i] ?? null)),
        (e: unknown) => batch.forEach((b) => b.reject(e)),
      ).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }
}
