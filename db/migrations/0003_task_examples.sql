-- Imported tasks' examples move out of one jsonb column into one row each (bounded reads and imports),
-- and task names become unique regardless of case. Names that already differ only in case keep the oldest
-- as is; each later one gets a "-caseN" suffix so the unique index can be built.
UPDATE "tasks" SET "name" = d."name" || '-case' || d."n"
FROM (
	SELECT "name", row_number() OVER (PARTITION BY lower("name") ORDER BY "created_at", "name") - 1 AS "n"
	FROM "tasks"
) d
WHERE "tasks"."name" = d."name" AND d."n" > 0;--> statement-breakpoint
CREATE TABLE "task_examples" (
	"task_name" text NOT NULL,
	"idx" integer NOT NULL,
	"example" jsonb NOT NULL,
	CONSTRAINT "task_examples_task_name_idx_pk" PRIMARY KEY("task_name","idx")
);
--> statement-breakpoint
ALTER TABLE "task_examples" ADD CONSTRAINT "task_examples_task_name_tasks_name_fk" FOREIGN KEY ("task_name") REFERENCES "public"."tasks"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
INSERT INTO "task_examples" ("task_name", "idx", "example")
SELECT t."name", e."ordinality" - 1, e."value"
FROM "tasks" t CROSS JOIN LATERAL jsonb_array_elements(t."examples") WITH ORDINALITY AS e("value", "ordinality")
WHERE jsonb_typeof(t."examples") = 'array';--> statement-breakpoint
CREATE UNIQUE INDEX "tasks_name_lower_idx" ON "tasks" USING btree (lower("name"));--> statement-breakpoint
ALTER TABLE "tasks" DROP COLUMN "examples";
