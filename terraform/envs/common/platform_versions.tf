# Shared by every environment root (each envs/<env>/ links this file). The versions live in the
# repository's one versions file, which the platform bootstrap reads too.
locals {
  platform_versions = yamldecode(file("${path.root}/../../../platform/versions.yaml"))
  versions = {
    kubernetes_version = local.platform_versions.eks.kubernetes_version
    addons             = local.platform_versions.eks.addons
    postgres_major     = local.platform_versions.rds.postgres_major
  }
}
