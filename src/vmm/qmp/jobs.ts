/**
 * QMP jobs, the shape QEMU 6.0+ gives snapshot-save and snapshot-load (QEMU's job.c and
 * job-qmp.c, qapi/job.json): a job has an id the client chose, a type, a status that moves
 * through QEMU's state machine with a `JOB_STATUS_CHANGE {"id", "status"}` event on every
 * change, a progress pair, and an error once it failed. Like QEMU's snapshot jobs it
 * finalizes itself but stays in the list, `concluded`, until `job-dismiss`:
 *
 *     success: created -> running -> waiting -> pending -> concluded -> null (dismissed)
 *     failure: created -> running -> aborting -> concluded -> null (dismissed)
 *
 * (QEMU: job_create, job_start, job_completed_txn_success / job_update_rc, job_conclude,
 * job_do_dismiss.) armbox's jobs cannot be paused, cancelled or finalized by hand, so only
 * these transitions exist here.
 */
import type { QmpError } from "./protocol.ts";

export type JobType = "snapshot-save" | "snapshot-load" | "snapshot-delete";

/** QEMU's JobStatus values a job here passes through. */
export type JobStatus = "created" | "running" | "waiting" | "pending" | "aborting" | "concluded" | "null";

/** QEMU's JobInfo, as query-jobs returns it. */
export interface JobInfo {
  id: string;
  type: JobType;
  status: JobStatus;
  "current-progress": number;
  "total-progress": number;
  error?: string;
}

/** What a job's work reports as it goes (QEMU's job_progress_set_remaining / _update). */
export interface JobProgress {
  /** The amount of work, in the job's own units (bytes for armbox's snapshot jobs). */
  total(n: number): void;
  /** The amount done so far, at most the total. */
  done(n: number): void;
}

/** The allowed transitions (QEMU's JobSTT, restricted to the statuses above). */
const NEXT: Record<JobStatus | "undefined", readonly JobStatus[]> = {
  undefined: ["created"],
  created: ["running", "aborting", "null"],
  running: ["waiting", "aborting"],
  waiting: ["pending", "aborting"],
  pending: ["concluded", "aborting"],
  aborting: ["concluded"],
  concluded: ["null"],
  null: [],
};

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
const WELLFORMED = /^[A-Za-z][A-Za-z0-9._-]*$/;

export class Job {
  status: JobStatus | "undefined" = "undefined";
  current = 0;
  totalWork = 0;
  error: string | undefined;
  /** Settles when the job has concluded (never rejects). */
  finished: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly type: JobType,
    private readonly changed: (job: Job) => void,
  ) {}

  transition(to: JobStatus): void {
    if (!NEXT[this.status].includes(to)) {
      throw new Error(`job '${this.id}': no transition from ${this.status} to ${to}`);
    }
    this.status = to;
    this.changed(this);
  }

  info(): JobInfo {
    const out: JobInfo = {
      id: this.id,
      type: this.type,
      status: this.status as JobStatus,
      "current-progress": this.current,
      "total-progress": Math.max(this.totalWork, this.current),
    };
    if (this.error !== undefined) out.error = this.error;
    return out;
  }

  readonly progress: JobProgress = {
    total: (n) => {
      this.totalWork = n;
    },
    done: (n) => {
      this.current = Math.max(this.current, n);
    },
  };
}

/**
 * The VMM's jobs (one list for every QMP client, as QEMU's). `onChange` sends the
 * JOB_STATUS_CHANGE event; `fail` builds the error a QMP command reports.
 */
export class JobRegistry {
  /** Newest first, as QEMU's list (QLIST_INSERT_HEAD) and so query-jobs. */
  private jobs: Job[] = [];

  constructor(
    private readonly onChange: (id: string, status: JobStatus) => void,
    private readonly fail: (desc: string) => QmpError,
  ) {}

  /** QEMU's job_create: checks the id, lists the job, `created`. */
  create(id: string, type: JobType): Job {
    if (!WELLFORMED.test(id)) throw this.fail(`Invalid job ID '${id}'`);
    if (this.jobs.some((j) => j.id === id)) throw this.fail(`Job ID '${id}' already in use`);
    const job = new Job(id, type, (j) => this.onChange(j.id, j.status as JobStatus));
    this.jobs.unshift(job);
    job.transition("created");
    return job;
  }

  /** QEMU's job_start: `running` (sent before the command's reply, as QEMU does). */
  start(job: Job): void {
    job.transition("running");
  }

  /**
   * Runs the job's work to its conclusion: `waiting`, `pending`, `concluded` when it
   * succeeds; its error recorded, `aborting`, `concluded` when it fails. Never rejects.
   */
  run(job: Job, work: (progress: JobProgress) => Promise<void>): Promise<void> {
    job.finished = (async () => {
      try {
        await work(job.progress);
      } catch (e) {
        job.error = ((e as Error)?.message ?? String(e)).split("\n")[0]!;
        job.transition("aborting");
        job.transition("concluded");
        return;
      }
      job.transition("waiting");
      job.transition("pending");
      job.transition("concluded");
    })();
    return job.finished;
  }

  /** QEMU's job-dismiss: only a concluded job; `null`, and it leaves the list. */
  dismiss(id: string): void {
    const job = this.jobs.find((j) => j.id === id);
    if (!job) throw this.fail("Job not found");
    if (job.status !== "concluded") {
      throw this.fail(`Job '${id}' in state '${job.status}' cannot accept command verb 'dismiss'`);
    }
    this.jobs = this.jobs.filter((j) => j !== job);
    job.transition("null");
  }

  list(): JobInfo[] {
    return this.jobs.map((j) => j.info());
  }

  /** Resolves once every job started so far has concluded. */
  async settled(): Promise<void> {
    await Promise.all(this.jobs.map((j) => j.finished));
  }
}
