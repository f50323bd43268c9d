"""What CloudFormation's stack statuses and status reasons mean to a deploy, and its request size limit."""

NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled")
SUCCESS_STATUS = {"CREATE": "CREATE_COMPLETE", "UPDATE": "UPDATE_COMPLETE", "IMPORT": "IMPORT_COMPLETE"}
UNRECOVERABLE_STATUSES = {"UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"}
TEMPLATE_BODY_LIMIT = 51_200  # bytes; larger templates must be passed as TemplateURL
