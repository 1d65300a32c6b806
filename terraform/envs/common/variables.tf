# Shared by every environment root (each envs/<env>/ links this file). What differs between
# environments (sizes, HA choices) is written in envs/<env>/main.tf; these are per deployment.
variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster-admin (operators' SSO role, the CD deploy role)."
  type        = list(string)
  default     = []
}

variable "public_access_cidrs" {
  description = "CIDRs that may reach the EKS API publicly; empty keeps the endpoint private-only."
  type        = list(string)
  default     = []
}

variable "gpu_node_group" {
  description = "Optional GPU node group (instance types and bounds); null for none."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  })
  default = null
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose CD jobs in this environment may assume the deploy role."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "The account's GitHub OIDC provider when another environment's root already created it; null creates it."
  type        = string
  default     = null
}
