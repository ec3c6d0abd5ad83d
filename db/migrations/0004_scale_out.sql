-- Scale-out without a shared disk: the artifact store every worker reaches (named files → content-addressed
-- chunks), where a job last ran, and a model's checkpoint as a key relative to any data directory instead
-- of one machine's absolute path ("…/worlds/<world>/models/<size>" keeps its tail; anything else is unknown).
ALTER TABLE "models" RENAME COLUMN "checkpoint_path" TO "checkpoint_key";--> statement-breakpoint
UPDATE "models" SET "checkpoint_key" = substring("checkpoint_key" from '(worlds/[^/]+/models/[^/]+)/?$');--> statement-breakpoint
CREATE TABLE "artifact_chunks" (
	"hash" text NOT NULL,
	"idx" integer NOT NULL,
	"bytes" bytea NOT NULL,
	CONSTRAINT "artifact_chunks_hash_idx_pk" PRIMARY KEY("hash","idx")
);
--> statement-breakpoint
CREATE TABLE "artifacts" (
	"key" text PRIMARY KEY NOT NULL,
	"hash" text NOT NULL,
	"size" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "ran_on" jsonb;--> statement-breakpoint
CREATE INDEX "artifacts_hash_idx" ON "artifacts" USING btree ("hash");