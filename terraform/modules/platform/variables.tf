variable "environment" {
  description = "Environment name: dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the environment's VPC."
  type        = string
}

variable "single_nat_gateway" {
  description = "Share one NAT gateway across AZs (cheaper, not AZ-resilient)."
  type        = bool
  default     = false
}

variable "versions" {
  description = "Pinned versions from platform/versions.yaml: Kubernetes minor, EKS add-on builds, PostgreSQL major."
  type = object({
    kubernetes_version = string
    addons             = map(string)
    postgres_major     = string
  })
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose CD jobs in this environment may assume the deploy role."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "The account's existing GitHub OIDC provider (one per account), or null to create it."
  type        = string
  default     = null
}

variable "endpoint_public_access" {
  description = "Expose the EKS API publicly as well (limited to public_access_cidrs)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs that may reach a public EKS API endpoint."
  type        = list(string)
  default     = []
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster-admin (operators, the CD role)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Node groups by pool (system, inference, optional gpu): typed and validated by modules/eks."
  type        = any
}

variable "mlflow_database" {
  description = "RDS PostgreSQL for MLflow's backend store, or null to run MLflow on another store."
  type = object({
    instance_class = optional(string, "db.t4g.medium")
    multi_az       = optional(bool, true)
  })
  default = null
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
