variable "name_prefix" {
  description = "Prefix of bucket and repository names, e.g. churn-dev."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be lowercase letters, digits and dashes (S3 and ECR naming)."
  }
}

variable "ecr_repositories" {
  description = "Image repositories to create under name_prefix/."
  type        = list(string)
  default     = ["components", "serving", "mlflow"]
}

variable "ecr_keep_images" {
  description = "How many images each repository keeps."
  type        = number
  default     = 200
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version of the artifacts bucket is kept (data versions are kept)."
  type        = number
  default     = 90
}

variable "model_noncurrent_version_days" {
  description = "Days an overwritten model object version is kept (models are rollback targets)."
  type        = number
  default     = 365
}

variable "artifact_expiry_days" {
  description = "Days KFP's intermediate outputs under pipeline_root_prefix are kept (rebuilt from data and code)."
  type        = number
  default     = 180
}

variable "pipeline_root_prefix" {
  description = "KFP pipeline root in the artifacts bucket; the only prefix whose objects expire."
  type        = string
  default     = "kfp/"
  validation {
    condition     = can(regex("^[a-z0-9-]+/$", var.pipeline_root_prefix)) && var.pipeline_root_prefix != "mlflow/"
    error_message = "pipeline_root_prefix is one folder (e.g. kfp/), never MLflow's mlflow/."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
