variable "name_prefix" {
  description = "Prefix of the role names, e.g. churn-dev."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer_url" {
  description = "The cluster's OIDC issuer URL."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARNs by purpose; needs data, artifacts and models."
  type        = map(string)
  validation {
    condition     = length(setsubtract(["data", "artifacts", "models"], keys(var.bucket_arns))) == 0
    error_message = "bucket_arns needs the keys data, artifacts and models."
  }
}

variable "kms_key_arn" {
  description = "Key the buckets are encrypted with."
  type        = string
}

variable "models_prefix" {
  description = "Prefix in the models bucket that KServe reads (InferenceService storageUri)."
  type        = string
  default     = "churn/models/"
}

variable "mlflow_artifact_prefix" {
  description = "Prefix in the artifacts bucket that holds MLflow's artifact store."
  type        = string
  default     = "mlflow/"
}

variable "database_secret_arn" {
  description = "Secrets Manager ARN of the MLflow database credentials, or null without a database."
  type        = string
  default     = null
}

variable "service_accounts" {
  description = "The one Kubernetes service account each role trusts."
  type = object({
    model_reader    = object({ namespace = string, name = string })
    pipeline_runner = object({ namespace = string, name = string })
    mlflow_server   = object({ namespace = string, name = string })
  })
  default = {
    model_reader    = { namespace = "churn", name = "churn-model-reader" }
    pipeline_runner = { namespace = "kubeflow", name = "pipeline-runner" }
    mlflow_server   = { namespace = "churn", name = "mlflow-server" }
  }
}

variable "tags" {
  description = "Tags for every role."
  type        = map(string)
  default     = {}
}
