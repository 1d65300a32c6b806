variable "name" {
  description = "Role name."
  type        = string
}

variable "service" {
  description = "Service principal allowed to assume the role, e.g. eks.amazonaws.com."
  type        = string
}

variable "trust_actions" {
  description = "Actions the service may perform on the role."
  type        = list(string)
  default     = ["sts:AssumeRole"]
}

variable "source_account" {
  description = "Limit the trust to calls made on behalf of this account; null for services that do not send it."
  type        = string
  default     = null
}

variable "managed_policy_arns" {
  description = "Managed policies to attach."
  type        = list(string)
  default     = []
}

variable "policy_json" {
  description = "Inline permissions policy (JSON), or null."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
