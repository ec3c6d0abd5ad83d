-- A run records its task when its row is written, so the runs of a sweep or of the demo name their task while
-- they train (GET /api/runs). Rows stored before this migration keep null here; the API derives their task
-- from their experiment as it did before.
ALTER TABLE "runs" ADD COLUMN "task" text;