-- Job dependencies: a job waits for others (waits_for: leased once they are all done, failed when one fails),
-- for a time (run_after: a job waiting for a pretraining looks again then), and knows the job that queued it
-- (parent_id: a sweep's cells, cancelled with it).
ALTER TABLE "jobs" ADD COLUMN "waits_for" integer[] DEFAULT '{}'::integer[] NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "run_after" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "parent_id" integer;--> statement-breakpoint
CREATE INDEX "jobs_parent_idx" ON "jobs" USING btree ("parent_id");