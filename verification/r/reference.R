# Reference values from R for the analysis package (hccsim.analysis), issue 7 item 8.
#
# Produces tests/data/r_reference.json (read by tests/test_analysis_references.py) and
# tests/data/dietox.csv (Pig, Time, Weight of geepack's dietox data). CI has no R: the JSON is
# committed, and R is only needed to regenerate it.
#
# Written for R 4.2.2 with survival 3.5-3, nlme 3.1-162, lme4 1.1-31, geepack 1.3-9 and
# jsonlite 1.8.4 (Debian packages r-cran-*); the versions used are recorded in the JSON.
#
# Run from the repository root, after the Python environment is installed (the survival data
# are the CSV files shipped with lifelines, read from the venv so that R and the tests read
# the very same files; their MD5 sums are recorded and checked by the tests):
#
#     Rscript verification/r/reference.R
#
# Optional: LIFELINES_DATASETS=/path/to/lifelines/datasets to read the CSVs from elsewhere.
#
# Every entry records its dataset, any derived column and the exact R call, which is what the
# script evaluates (eval(parse(text = call))). Numbers are written by jsonlite with
# digits = NA (15 significant digits, relative rounding error below 1e-14); NA (e.g. a median
# confidence limit that is not reached) is written as null.
#
# Conventions of the calls:
# - Kaplan-Meier: survfit(..., conf.type = "log-log"), 95% limits; the median and its limits
#   from summary(fit)$table (quantile.survfit: Brookmeyer-Crowley on the pointwise band);
#   survival and limits at landmark times from summary(fit, times = ...).
# - Log-rank: survdiff (rho = 0); observed and expected summed over strata.
# - Cox: coxph(ties = "efron") with a tight stopping rule (eps = 1e-11, iter.max = 100; R warns
#   for an eps below toler.chol, 1.8e-12) so that the reference is the maximum itself, not
#   R's default stop at a relative change of the log partial likelihood below 1e-9.
# - RMST: summary(survfit(...), rmean = tau)$table, "rmean" and "se(rmean)".
# - Mixed models: nlme::lme(..., method = "REML") with tightened tolerances, and the same
#   model by lme4::lmer (REML) as an independent optimiser.

suppressPackageStartupMessages({
  library(survival)
  library(nlme)
  library(jsonlite)
})

lifelines_dir <- Sys.getenv("LIFELINES_DATASETS", unset = "")
if (!nzchar(lifelines_dir)) {
  lifelines_dir <- Sys.glob(".venv/lib/python3*/site-packages/lifelines/datasets")[1]
}
if (is.na(lifelines_dir) || !dir.exists(lifelines_dir)) {
  stop("lifelines datasets not found: run from the repository root with .venv installed, ",
       "or set LIFELINES_DATASETS")
}
lifelines_version <- local({
  v <- readLines(file.path(dirname(lifelines_dir), "version.py"))
  sub('.*"(.*)".*', "\\1", grep("__version__", v, value = TRUE)[1])
})

# -- datasets -------------------------------------------------------------------------------------

files <- list(
  waltons = "waltons_dataset.csv", leukemia = "anderson.csv", rossi = "rossi.csv",
  gbsg2 = "gbsg2.csv", lung = "lung.csv", larynx = "larynx.csv"
)
path_of <- function(name) file.path(lifelines_dir, files[[name]])

data_env <- new.env()
data_env$waltons <- read.csv(path_of("waltons"))
data_env$leukemia <- read.table(path_of("leukemia"), header = TRUE, sep = " ")
data_env$rossi <- read.csv(path_of("rossi"))
data_env$gbsg2 <- read.csv(path_of("gbsg2"))
data_env$lung <- read.csv(path_of("lung"))
data_env$larynx <- read.csv(path_of("larynx"))

# Derived columns (the tests build the same ones).
derived <- list(
  waltons = list(mir137 = "as.integer(group == \"miR-137\")"),
  gbsg2 = list(hormone = "as.integer(horTh == \"yes\")"),
  larynx = list(stage = "1 + Stage_II + 2 * Stage_III + 3 * Stage_IV")
)
for (ds in names(derived)) {
  for (col in names(derived[[ds]])) {
    data_env[[ds]][[col]] <- eval(parse(text = derived[[ds]][[col]]), data_env[[ds]])
  }
}

dataset_info <- lapply(names(files), function(name) {
  list(
    file = paste0("lifelines/datasets/", files[[name]]),
    lifelines_version = lifelines_version,
    md5 = unname(tools::md5sum(path_of(name))),
    rows = nrow(data_env[[name]]),
    derived = if (is.null(derived[[name]])) structure(list(), names = character(0))
              else derived[[name]]
  )
})
names(dataset_info) <- names(files)

# dietox (geepack): exported, then read back so that R fits exactly the numbers in the CSV.
data(dietox, package = "geepack")
dietox_out <- data.frame(
  Pig = as.integer(as.character(dietox$Pig)), Time = dietox$Time, Weight = dietox$Weight
)
write.csv(dietox_out, "tests/data/dietox.csv", row.names = FALSE)
data_env$dietox <- read.csv("tests/data/dietox.csv")
dataset_info$dietox <- list(
  file = "tests/data/dietox.csv",
  origin = paste0(
    "geepack::dietox (geepack ", as.character(packageVersion("geepack")), "): weights of 72 ",
    "pigs over 12 weeks (Lauridsen et al. 1999); columns Pig, Time, Weight exported by this ",
    "script with write.csv and read back; the data of statsmodels' MixedLM documentation ",
    "example, which loads it as sm.datasets.get_rdataset('dietox', 'geepack')"
  ),
  md5 = unname(tools::md5sum("tests/data/dietox.csv")),
  rows = nrow(data_env$dietox)
)

run <- function(call) eval(parse(text = call), envir = data_env)

# -- Kaplan-Meier ---------------------------------------------------------------------------------

km_entry <- function(dataset, call, landmarks, subset = NULL) {
  fit <- run(call)
  tab <- summary(fit)$table
  s <- summary(fit, times = landmarks)
  list(
    dataset = dataset, subset = subset, call = call,
    n = unname(tab[["records"]]), events = unname(tab[["events"]]),
    median = unname(tab[["median"]]),
    median_lower = unname(tab[["0.95LCL"]]),
    median_upper = unname(tab[["0.95UCL"]]),
    # R takes the midpoint of a flat stretch at exactly S = 1/2; hccsim does not (its docs).
    flat_at_half = any(abs(fit$surv - 0.5) < sqrt(.Machine$double.eps)),
    landmarks = I(landmarks), survival = I(s$surv), lower = I(s$lower), upper = I(s$upper),
    n_risk = I(s$n.risk)
  )
}

km <- list(
  km_entry("waltons", 'survfit(Surv(T, E) ~ 1, data = subset(waltons, group == "miR-137"), conf.type = "log-log")',
           c(10, 30, 50), 'group == "miR-137"'),
  km_entry("waltons", 'survfit(Surv(T, E) ~ 1, data = subset(waltons, group == "control"), conf.type = "log-log")',
           c(10, 30, 50), 'group == "control"'),
  km_entry("leukemia", "survfit(Surv(t, status) ~ 1, data = subset(leukemia, Rx == 0), conf.type = \"log-log\")",
           c(6, 10, 20), "Rx == 0"),
  km_entry("leukemia", "survfit(Surv(t, status) ~ 1, data = subset(leukemia, Rx == 1), conf.type = \"log-log\")",
           c(3, 8, 15), "Rx == 1"),
  km_entry("rossi", 'survfit(Surv(week, arrest) ~ 1, data = rossi, conf.type = "log-log")',
           c(10, 26, 52)),
  km_entry("gbsg2", 'survfit(Surv(time, cens) ~ 1, data = subset(gbsg2, tgrade == "I"), conf.type = "log-log")',
           c(365, 1095, 1825), 'tgrade == "I"'),
  km_entry("gbsg2", 'survfit(Surv(time, cens) ~ 1, data = subset(gbsg2, tgrade == "II"), conf.type = "log-log")',
           c(365, 1095, 1825), 'tgrade == "II"'),
  km_entry("gbsg2", 'survfit(Surv(time, cens) ~ 1, data = subset(gbsg2, tgrade == "III"), conf.type = "log-log")',
           c(365, 1095, 1825), 'tgrade == "III"'),
  km_entry("lung", 'survfit(Surv(time, status) ~ 1, data = subset(lung, sex == 1), conf.type = "log-log")',
           c(180, 365, 730), "sex == 1"),
  km_entry("lung", 'survfit(Surv(time, status) ~ 1, data = subset(lung, sex == 2), conf.type = "log-log")',
           c(180, 365, 730), "sex == 2"),
  km_entry("larynx", 'survfit(Surv(time, death) ~ 1, data = larynx, conf.type = "log-log")',
           c(1, 3, 5))
)

# -- log-rank -------------------------------------------------------------------------------------

logrank_entry <- function(dataset, call, group, strata = NULL) {
  sd <- run(call)
  obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
  exp <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
  df <- length(sd$n) - 1
  list(
    dataset = dataset, call = call, group = group, strata = strata,
    groups = I(sub("^[^=]*=", "", names(sd$n))), n = I(as.vector(sd$n)),
    observed = I(as.vector(obs)), expected = I(as.vector(exp)),
    statistic = sd$chisq, df = df, p_value = pchisq(sd$chisq, df, lower.tail = FALSE)
  )
}

logrank <- list(
  logrank_entry("waltons", "survdiff(Surv(T, E) ~ group, data = waltons)", "group"),
  logrank_entry("leukemia", "survdiff(Surv(t, status) ~ Rx, data = leukemia)", "Rx"),
  logrank_entry("gbsg2", "survdiff(Surv(time, cens) ~ tgrade, data = gbsg2)", "tgrade"),
  logrank_entry("larynx", "survdiff(Surv(time, death) ~ stage, data = larynx)", "stage"),
  logrank_entry("rossi", "survdiff(Surv(week, arrest) ~ fin + strata(wexp), data = rossi)",
                "fin", "wexp"),
  logrank_entry("gbsg2", "survdiff(Surv(time, cens) ~ hormone + strata(menostat), data = gbsg2)",
                "hormone", "menostat"),
  logrank_entry("gbsg2", "survdiff(Surv(time, cens) ~ tgrade + strata(hormone), data = gbsg2)",
                "tgrade", "hormone"),
  logrank_entry("lung", "survdiff(Surv(time, status) ~ sex + strata(ph.ecog), data = lung)",
                "sex", "ph.ecog")
)

# -- Cox ------------------------------------------------------------------------------------------

tight <- "control = coxph.control(eps = 1e-11, iter.max = 100)"
cox_entry <- function(dataset, formula, covariates, strata = NULL, binary = FALSE) {
  call <- sprintf('coxph(%s, data = %s, ties = "efron", %s)', formula, dataset, tight)
  fit <- run(call)
  list(
    dataset = dataset, call = call, covariates = I(covariates), strata = strata,
    binary = binary, n = fit$n, events = fit$nevent, n_missing = length(fit$na.action),
    coef = I(unname(coef(fit))), se = I(unname(sqrt(diag(vcov(fit))))),
    loglik = fit$loglik[2], iterations = fit$iter
  )
}

cox <- list(
  cox_entry("rossi", "Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio",
            c("fin", "age", "race", "wexp", "mar", "paro", "prio")),
  cox_entry("rossi", "Surv(week, arrest) ~ fin", "fin", binary = TRUE),
  cox_entry("rossi", "Surv(week, arrest) ~ fin + age + race + mar + paro + prio + strata(wexp)",
            c("fin", "age", "race", "mar", "paro", "prio"), strata = "wexp"),
  cox_entry("leukemia", "Surv(t, status) ~ Rx", "Rx", binary = TRUE),
  cox_entry("leukemia", "Surv(t, status) ~ Rx + logWBC + strata(sex)", c("Rx", "logWBC"),
            strata = "sex"),
  cox_entry("waltons", "Surv(T, E) ~ mir137", "mir137", binary = TRUE),
  cox_entry("gbsg2", "Surv(time, cens) ~ hormone + age + tsize + pnodes + progrec + estrec",
            c("hormone", "age", "tsize", "pnodes", "progrec", "estrec")),
  cox_entry("lung", "Surv(time, status) ~ age + sex + ph.ecog", c("age", "sex", "ph.ecog"))
)

# -- RMST -----------------------------------------------------------------------------------------

rmst_entry <- function(dataset, call, tau, subset = NULL) {
  fit <- run(call)
  tab <- summary(fit, rmean = tau)$table
  list(dataset = dataset, subset = subset, call = call, tau = tau,
       rmst = unname(tab[["rmean"]]), se = unname(tab[["se(rmean)"]]))
}

rmst <- list(
  rmst_entry("gbsg2", 'survfit(Surv(time, cens) ~ 1, data = subset(gbsg2, horTh == "no"))',
             1825, 'horTh == "no"'),
  rmst_entry("gbsg2", 'survfit(Surv(time, cens) ~ 1, data = subset(gbsg2, horTh == "yes"))',
             1825, 'horTh == "yes"'),
  rmst_entry("leukemia", "survfit(Surv(t, status) ~ 1, data = subset(leukemia, Rx == 0))", 23,
             "Rx == 0"),
  rmst_entry("leukemia", "survfit(Surv(t, status) ~ 1, data = subset(leukemia, Rx == 1))", 23,
             "Rx == 1"),
  rmst_entry("waltons", 'survfit(Surv(T, E) ~ 1, data = subset(waltons, group == "control"))',
             50, 'group == "control"'),
  rmst_entry("lung", "survfit(Surv(time, status) ~ 1, data = subset(lung, sex == 1))", 730,
             "sex == 1"),
  rmst_entry("rossi", "survfit(Surv(week, arrest) ~ 1, data = rossi)", 52)
)

# -- mixed models (dietox) ------------------------------------------------------------------------

lme_control <- "control = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-12, msTol = 1e-14, msVerbose = FALSE)"
lme_entry <- function(formula) {
  call <- sprintf('lme(%s, random = ~ 1 | Pig, data = dietox, method = "REML", %s)', formula,
                  lme_control)
  fit <- run(call)
  tt <- summary(fit)$tTable
  list(
    dataset = "dietox", call = call, terms = I(rownames(tt)),
    estimate = I(unname(tt[, "Value"])), se = I(unname(tt[, "Std.Error"])),
    group_sd = sqrt(as.numeric(getVarCov(fit))), residual_sd = fit$sigma,
    loglik_reml = as.numeric(logLik(fit)),
    n_observations = nrow(fit$data), n_groups = unname(fit$dims$ngrps[1])
  )
}
lmer_entry <- function(formula) {
  call <- sprintf("lme4::lmer(%s + (1 | Pig), data = dietox, REML = TRUE)", formula)
  fit <- run(call)
  cf <- summary(fit)$coefficients
  vc <- as.data.frame(lme4::VarCorr(fit))
  list(
    dataset = "dietox", call = call, terms = I(rownames(cf)),
    estimate = I(unname(cf[, "Estimate"])), se = I(unname(cf[, "Std. Error"])),
    group_sd = vc$sdcor[vc$grp == "Pig"], residual_sd = vc$sdcor[vc$grp == "Residual"],
    loglik_reml = as.numeric(logLik(fit))
  )
}

# Likelihood-ratio test of "no change over weeks": both models fitted by maximum likelihood.
lr_entry <- function() {
  ml <- function(formula) {
    run(sprintf('lme(%s, random = ~ 1 | Pig, data = dietox, method = "ML", %s)', formula,
                lme_control))
  }
  full <- ml("Weight ~ factor(Time)")
  null <- ml("Weight ~ 1")
  a <- anova(null, full)
  list(
    dataset = "dietox",
    call = "anova(lme(Weight ~ 1, ML), lme(Weight ~ factor(Time), ML)), random = ~ 1 | Pig",
    loglik_null = as.numeric(logLik(null)), loglik_full = as.numeric(logLik(full)),
    statistic = unname(a$L.Ratio[2]), df = unname(a$df[2] - a$df[1]),
    group_sd_null = sqrt(as.numeric(getVarCov(null)))
  )
}

mixed <- list(
  weeks_categorical = lme_entry("Weight ~ factor(Time)"),
  weeks_categorical_lme4 = lmer_entry("Weight ~ factor(Time)"),
  time_linear = lme_entry("Weight ~ Time"),
  likelihood_ratio = lr_entry()
)

# -- Fisher exact and Clopper-Pearson (R's own, beside the published values in the tests) ---------
# The two tables are the examples of R's fisher.test help page.

fisher_entry <- function(name, call) {
  list(name = name, call = call, p_value = run(call)$p.value)
}
fisher <- list(
  fisher_entry("tea tasting (Agresti 2002, p. 91), two-sided",
               "fisher.test(matrix(c(3, 1, 1, 3), nrow = 2))"),
  fisher_entry("tea tasting (Agresti 2002, p. 91), greater",
               'fisher.test(matrix(c(3, 1, 1, 3), nrow = 2), alternative = "greater")'),
  fisher_entry("convictions of like-sex twins (Fisher 1962, 1970), two-sided",
               "fisher.test(matrix(c(2, 10, 15, 3), nrow = 2))"),
  fisher_entry("convictions of like-sex twins (Fisher 1962, 1970), less",
               'fisher.test(matrix(c(2, 10, 15, 3), nrow = 2), alternative = "less")')
)

binom_entry <- function(x, n) {
  call <- sprintf("binom.test(%d, %d)$conf.int", x, n)
  ci <- run(call)
  list(count = x, n = n, call = call, lower = ci[1], upper = ci[2])
}
clopper_pearson <- list(binom_entry(81L, 263L), binom_entry(15L, 148L), binom_entry(0L, 20L),
                        binom_entry(1L, 29L), binom_entry(5L, 25L))

# -- write ----------------------------------------------------------------------------------------

out <- list(
  generated_by = "Rscript verification/r/reference.R",
  date = format(Sys.Date()),
  r_version = R.version.string,
  packages = list(
    survival = as.character(packageVersion("survival")),
    nlme = as.character(packageVersion("nlme")),
    lme4 = as.character(packageVersion("lme4")),
    geepack = as.character(packageVersion("geepack")),
    jsonlite = as.character(packageVersion("jsonlite"))
  ),
  datasets = dataset_info,
  kaplan_meier = km, logrank = logrank, cox = cox, rmst = rmst, mixed_model = mixed,
  fisher_exact = fisher, clopper_pearson = clopper_pearson
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null",
                  pretty = TRUE),
           "tests/data/r_reference.json")
cat("wrote tests/data/r_reference.json and tests/data/dietox.csv\n")
