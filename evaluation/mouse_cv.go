package evaluation

import (
	"errors"
	"io/fs"

	"github.com/vigil-auth/vigil/processors/pointer"
)

// maxChunksPerSession bounds the trials cut from one training session so
// that a few long sessions do not dominate the pooled figures.
const maxChunksPerSession = 20

// RunMouseTrainingCV evaluates on the training sessions alone, so that
// settings can be chosen without ever looking at the test sessions. For each
// ordered pair of users (owner, other):
//
//   - genuine trials: each of the owner's training sessions is held out in
//     turn, the owner enrols on the rest, and consecutive chunks of K actions
//     of the held-out session are scored (at most 20 per session; K = 0 is
//     the whole session);
//   - impostor trials: chunks of K actions of the other user's training
//     sessions, scored against the owner's full training profile;
//   - the population is every user but the owner and the other user, as a
//     deployment never has the impostor's data in its population.
func RunMouseTrainingCV(fsys fs.FS, opts MouseOptions) (*MouseReport, error) {
	ks := opts.Actions
	if ks == nil {
		ks = DefaultMouseActions
	}
	users, err := fs.ReadDir(fsys, "training_files")
	if err != nil {
		return nil, err
	}
	byUser := map[string][]*mouseSession{}
	var userIDs []string
	var jobs []*mouseSession
	for _, u := range users {
		if !u.IsDir() {
			continue
		}
		uid := u.Name()
		names, err := sessionFiles(fsys, "training_files", uid)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			s := &mouseSession{user: uid, name: name}
			byUser[uid] = append(byUser[uid], s)
			jobs = append(jobs, s)
		}
		if len(byUser[uid]) > 0 {
			userIDs = append(userIDs, uid)
		}
	}
	if len(userIDs) < 3 {
		return nil, errors.New("mouse: training-cv needs at least 3 users with training sessions")
	}
	if err := loadSessions(fsys, jobs, opts); err != nil {
		return nil, err
	}
	full := map[string]*pointer.Profile{}
	for _, uid := range userIDs {
		full[uid] = pointer.NewProfile()
		for _, s := range byUser[uid] {
			full[uid].Update(s.actions)
		}
	}
	// Leave-one-session-out profiles, per user and held-out session.
	loso := map[*mouseSession]*pointer.Profile{}
	for _, uid := range userIDs {
		for _, held := range byUser[uid] {
			p := pointer.NewProfile()
			for _, s := range byUser[uid] {
				if s != held {
					p.Update(s.actions)
				}
			}
			loso[held] = p
		}
	}
	population := func(owner, other string) *pointer.Population {
		if opts.NoPopulation {
			return nil
		}
		var ps []*pointer.Profile
		for _, uid := range userIDs {
			if uid != owner && uid != other {
				ps = append(ps, full[uid])
			}
		}
		return pointer.NewPopulation(ps)
	}
	rep := &MouseReport{
		Protocol: "balabit training-cv: training_files only; genuine = chunks of K actions of a held-out training session of the owner (enrolled on the rest), " +
			"impostor = chunks of another user's training sessions; population = users other than both",
		Users: len(userIDs),
	}
	for _, k := range ks {
		w := MouseWindow{Actions: k}
		for _, owner := range userIDs {
			var gen, imp []float64
			for _, other := range userIDs {
				if other == owner {
					continue
				}
				pop := population(owner, other)
				for _, held := range byUser[owner] {
					for _, c := range chunks(held.actions, k) {
						gen = append(gen, opts.Model.Score(loso[held], c, pop).Score)
					}
				}
				for _, s := range byUser[other] {
					for _, c := range chunks(s.actions, k) {
						imp = append(imp, opts.Model.Score(full[owner], c, pop).Score)
					}
				}
			}
			w.genuine = append(w.genuine, gen...)
			w.impostor = append(w.impostor, imp...)
			if len(gen) > 0 && len(imp) > 0 {
				w.PerUser = append(w.PerUser, MouseUser{User: owner, AUC: AUC(gen, imp), EER: EER(gen, imp), Genuine: len(gen), Impostor: len(imp)})
			}
		}
		w.Genuine, w.Impostor = len(w.genuine), len(w.impostor)
		w.AUCGlobal = AUC(w.genuine, w.impostor)
		w.EERGlobal = EER(w.genuine, w.impostor)
		w.FARAt05, w.FRRAt05 = rateAt(w.genuine, w.impostor, 0.5)
		var aucs, eers []float64
		for _, u := range w.PerUser {
			aucs, eers = append(aucs, u.AUC), append(eers, u.EER)
		}
		w.AUCUserMean, _ = meanSD(aucs)
		w.EERUserMean, _ = meanSD(eers)
		rep.Windows = append(rep.Windows, w)
	}
	return rep, nil
}

// chunks cuts acts into at most maxChunksPerSession consecutive chunks of k
// actions (k = 0: the whole session).
func chunks(acts []pointer.Action, k int) [][]pointer.Action {
	if len(acts) == 0 {
		return nil
	}
	if k <= 0 {
		return [][]pointer.Action{acts}
	}
	var out [][]pointer.Action
	for i := 0; i+k <= len(acts) && len(out) < maxChunksPerSession; i += k {
		out = append(out, acts[i:i+k])
	}
	return out
}
