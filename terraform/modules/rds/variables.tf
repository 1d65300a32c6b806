variable "name" {
  description = "Identifier of the database instance, e.g. churn-dev-mlflow."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the DB subnet group."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version; RDS applies minor upgrades itself (platform/versions.yaml)."
  type        = string
  default     = "16"
  # A minor pin goes stale once auto_minor_version_upgrade moves the instance on, and the next
  # apply then tries to downgrade it and fails.
  validation {
    condition     = can(regex("^[0-9]+$", var.engine_version))
    error_message = "engine_version is a major version only, e.g. 16."
  }
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  description = "Initial storage; autoscaling may grow it to four times this."
  type        = number
  default     = 20
}

variable "multi_az" {
  description = "Standby in a second AZ."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Automated backup retention."
  type        = number
  default     = 14
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
