/**
 * Natural batching ("group commit") of calls that each would be one database
 * statement: a call made while no batch is in flight starts one at once (no
 * added wait when idle); calls made while one is in flight wait for it and go
 * together in the next, up to `maxBatch`. Every caller gets its own result and
 * returns only once the statement that carries its item has finished, so a
 * caller sees exactly what it would have seen with a statement of its own: a
 * crash before that loses the item's write as it would have lost a single one.
 *
 * `run` receives the items in call order and returns one result per item, in
 * the same order. If it throws, every caller of that batch gets the error.
 */
export class Coalescer<In, Out> {
  private waiting: { input: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (inputs: In[]) => Promise<Out[]>,
    private readonly options: { maxBatch?: number; maxInFlight?: number } = {},
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= (this.options.maxInFlight ?? 1)) return;
    // Calls made in the same turn of the event loop go together.
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.waiting.length === 0 || this.inFlight >= (this.options.maxInFlight ?? 1)) return;
    const batch = this.waiting.splice(0, this.options.maxBatch ?? 100);
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      this.pump();
    };
    this.run(batch.map((b) => b.input)).then(
      (outs) => {
        if (outs.length !== batch.length) {
          const e = new Error(`batch returned ${outs.length} results for ${batch.length} items`);
          for (const b of batch) b.reject(e);
        } else {
          batch.forEach((b, i) => b.resolve(outs[i] as Out));
        }
        done();
      },
      (e: unknown) => {
        for (const b of batch) b.reject(e);
        done();
      },
    );
  }
}
