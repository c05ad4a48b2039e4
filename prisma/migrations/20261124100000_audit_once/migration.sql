-- An operation records each audit action once, even when a worker dies after writing it and
-- another worker resumes the operation (its success or failure hook then runs again).
DELETE FROM "AuditEvent" a USING "AuditEvent" b
WHERE a."operationId" IS NOT NULL AND a."operationId" = b."operationId" AND a."action" = b."action" AND a."seq" > b."seq";
CREATE UNIQUE INDEX "AuditEvent_operation_action_key" ON "AuditEvent"("operationId", "action") WHERE "operationId" IS NOT NULL;
