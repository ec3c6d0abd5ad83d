ALTER TABLE "results" ADD COLUMN "gap_too_small" boolean;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "selected_student_acc" double precision;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "selected_pgr" double precision;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "selected_step" integer;