variable "name" {
  description = "Role name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer_url" {
  description = "The cluster's OIDC issuer URL (with or without https://)."
  type        = string
}

variable "namespace" {
  description = "Namespace of the one service account allowed to assume the role."
  type        = string
}

variable "service_account" {
  description = "Name of the one service account allowed to assume the role."
  type        = string
}

variable "policy_json" {
  description = "Inline permissions policy (JSON), or null for none."
  type        = string
  default     = null
}

variable "managed_policy_arns" {
  description = "Managed policies to attach (AWS-managed policies meant for IRSA, e.g. the VPC CNI's)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
