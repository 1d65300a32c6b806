variable "name" {
  description = "Name of the deploy role, e.g. churn-dev-github-deploy."
  type        = string
}

variable "repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the role."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.repository))
    error_message = "repository is owner/name, without wildcards."
  }
}

variable "environment" {
  description = "GitHub environment whose jobs may assume the role (the token's sub names it)."
  type        = string
}

variable "existing_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider when another root already created it (one per account); null creates it."
  type        = string
  default     = null
}

variable "ecr_repository_arns" {
  description = "ECR repositories the deploy role pushes to."
  type        = list(string)
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
